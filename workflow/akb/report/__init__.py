"""Tables, figures and the papers' published numbers; reads score files only."""
