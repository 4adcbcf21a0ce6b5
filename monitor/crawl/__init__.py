"""The crawler: what it may reach, what it fetches and the evidence it keeps."""
