"""What a run needs before it starts: packaged model conversion, staging downloads, readiness checks."""
