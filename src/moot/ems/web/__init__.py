"""Meeting Center pages: server-rendered Jinja2, small vanilla JS, no build step."""
