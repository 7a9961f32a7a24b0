"""The public pages (no sign-in): every anchor with its latest published figures, and a page per anchor."""
