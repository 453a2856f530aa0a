"""A document job: where its bytes come from and what they are."""
