"""Verify: the three verdicts of a bundle, month-end batches, the trust set and revocations."""
