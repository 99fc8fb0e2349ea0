"""Contract tests: generated schemas, AsyncAPI, examples and compatibility."""
