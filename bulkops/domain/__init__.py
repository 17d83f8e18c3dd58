"""The product's contracts and rules: pure Python, no I/O, imports nothing of ours."""
