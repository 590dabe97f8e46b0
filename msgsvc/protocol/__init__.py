"""The wire format: request lines and literals in; replies and events out, as bytes."""
