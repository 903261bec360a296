"""Gorouter's route model and the shared-memory route table; pure logic, no I/O frameworks."""
