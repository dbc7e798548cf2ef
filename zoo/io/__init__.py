"""Files zoo reads and writes: adapter folders, run records, exports, and peft's adapter format."""
