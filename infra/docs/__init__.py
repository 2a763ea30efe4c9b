"""The documentation site's generated sections (sections): the settings reference, the
experiment table, the sweep estimate, the code map and the home page."""
