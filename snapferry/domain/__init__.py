"""The rules: plain Python over dataclasses, no HTTP and no SQL. Start reading here."""
