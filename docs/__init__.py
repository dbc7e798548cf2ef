"""The documentation site's pages (mkdocs.yml), and their generator, docs.gen."""
