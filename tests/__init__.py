"""msgsvc's tests: trial TestCases, run by trial or pytest."""
