"""A chat over the fleet: the turn runner and the session facade the window talks to."""
