"""Offline emulator of the OpenAI image endpoints."""
