"""Benchmark routines shared by the ``bench/`` scripts and the ``pyvideo`` CLI."""
