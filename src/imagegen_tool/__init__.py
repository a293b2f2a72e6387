"""imagegen-tool."""
