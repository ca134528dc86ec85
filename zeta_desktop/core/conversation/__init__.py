"""The conversation as data: messages with parents, so edits and regenerations are branches."""
