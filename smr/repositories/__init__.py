"""All SQL lives here. Functions take the caller's session and never commit."""
