"""Network pieces shared by the method plugins."""
