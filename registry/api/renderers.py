import orjson
from rest_framework.renderers import JSONRenderer
from rest_framework.utils.encoders import JSONEncoder

_DRF_DEFAULT = JSONEncoder().default
_OPTIONS = orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS


class FastJSONRenderer(JSONRenderer):
    """DRF's JSON output, encoded by orjson: ``json.dumps`` was a large share of the time of a page
    of models (the README's "Where the speed comes from").

    The bytes match DRF's compact output: the values a serializer does not already turn into JSON
    types (dates, decimals, lazy strings, UUIDs) go through DRF's own encoder, and U+2028/U+2029 are
    escaped as DRF does. What orjson refuses (an integer beyond 64 bits in someone's
    hyperparameters) and indented output (``; indent=4``, the browsable API) take DRF's path.
    """

    def render(self, data, accepted_media_type=None, renderer_context=None):
        if data is None:
            return b""
        if not self.compact or self.ensure_ascii or not self.strict:
            return super().render(data, accepted_media_type, renderer_context)
        if self.get_indent(accepted_media_type, renderer_context or {}) is not None:
            return super().render(data, accepted_media_type, renderer_context)
        try:
            encoded = orjson.dumps(data, default=_DRF_DEFAULT, option=_OPTIONS)
        except orjson.JSONEncodeError:
            return super().render(data, accepted_media_type, renderer_context)
        if b"\xe2\x80\xa8" in encoded or b"\xe2\x80\xa9" in encoded:
            encoded = encoded.replace(b"\xe2\x80\xa8", b"\\u2028").replace(b"\xe2\x80\xa9", b"\\u2029")
        return encoded
