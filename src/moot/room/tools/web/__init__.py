"""Send web page: a presenter shows an http(s) address on everyone's stage, framed where the
site allows it (framing.py asks the site), a link to open it where it does not."""
