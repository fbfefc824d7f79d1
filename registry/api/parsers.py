import io

from rest_framework import parsers
from rest_framework.exceptions import ParseError

from registry.validators import MAX_BODY_JSON_DEPTH, json_text_depth


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser, refusing a body nested more than MAX_BODY_JSON_DEPTH levels before parsing
    it: Python's parser recurses once per level, and a thousand levels (anonymously, on the login)
    raised RecursionError instead of a 400."""

    def parse(self, stream, media_type=None, parser_context=None):
        body = stream.read() if stream is not None else b""
        text = body.decode((parser_context or {}).get("encoding") or "utf-8", errors="replace")
        if json_text_depth(text) > MAX_BODY_JSON_DEPTH:
            raise ParseError(f"JSON parse error - nested more than {MAX_BODY_JSON_DEPTH} levels deep.")
        return super().parse(io.BytesIO(body), media_type, parser_context)
