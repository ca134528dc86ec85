"""Qt widgets and the one bridge that brings core callbacks onto the GUI thread."""
