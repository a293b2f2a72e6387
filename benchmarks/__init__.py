"""imagegen-tool's benchmark suite: ``python -m benchmarks [--quick] [NAME ...]``.

Every figure compares the package with a baseline measured in the same run, interleaved, on realistic payloads
(the emulator serving images of real sizes, in its own process). See ``benchmarks/README.md``.
"""
