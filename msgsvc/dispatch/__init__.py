"""The command table: every verb once, its arguments bound, its domain errors turned into replies."""
