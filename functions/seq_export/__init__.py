"""seq-export: daily export of SendGrid Engagement Quality (SEQ) subuser scores."""

__version__ = "0.1.0"
