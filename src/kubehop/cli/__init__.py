"""click commands and rendering."""
