"""The site's Jinja2 templates, stylesheet and script: shipped inside the
package as `generator.templates` (see pyproject.toml's package-dir)."""
