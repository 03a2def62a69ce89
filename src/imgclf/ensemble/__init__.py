"""Ensembling on OOF, the validated submission, and the local leaderboard."""
