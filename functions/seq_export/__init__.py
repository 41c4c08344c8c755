"""seq-export: daily export of SendGrid Engagement Quality (SEQ) subuser scores."""

#: The project's one version (pyproject.toml reads it; CHANGELOG.md and template.yaml repeat it, tests hold them equal).
__version__ = "0.2.0"
