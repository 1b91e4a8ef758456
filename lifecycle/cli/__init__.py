"""Click commands: translate flags into typed inputs, print results and errors."""
