"""The studio's HTTP API as an OpenAPI 3.1 document, served at /api/openapi.json and rendered as
a plain page at /api/docs (no Swagger UI: it would need a CDN, and the studio works offline).

Written out here rather than generated: Starlette has no schema generator that does not need
YAML docstrings, and a test checks that every route of the app is documented and vice versa.
"""

from __future__ import annotations

import html as _html

from inspire import __version__

_ERROR = {
    "description": "refused; the body says why",
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
}
_FOLDER_Q = {
    "name": "folder",
    "in": "query",
    "required": False,
    "schema": {"type": "string"},
    "description": "clips folder key (c0, c1...; see /api/folders); needed only when several folders hold the id",
}
_ID = {
    "name": "id",
    "in": "path",
    "required": True,
    "schema": {"type": "string"},
    "description": "the clip's id (its file name without .wav)",
}
_ROOT = {
    "name": "root",
    "in": "path",
    "required": True,
    "schema": {"type": "string"},
    "description": "opened folder key (r0, r1...)",
}
_PATH = {
    "name": "path",
    "in": "path",
    "required": True,
    "schema": {"type": "string"},
    "description": "path inside that folder; anything that leads outside it (.., absolute paths, symlinks out) is 404",
}
_RUN = {
    "name": "key",
    "in": "path",
    "required": True,
    "schema": {"type": "string"},
    "description": "run key (see /api/runs)",
}


def _json(schema_ref: str, description: str) -> dict:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema_ref}"}}},
    }


SPEC: dict = {
    "openapi": "3.1.0",
    "info": {
        "title": "inspire studio",
        "version": __version__,
        "description": (
            "The local web app of `inspire studio`: audition, triage and mark generated clips and training previews. "
            "The page uses this API and so can scripts. Authentication: every state-changing request (PUT) needs the "
            "session token printed by `inspire studio` (in its URL, ?token=...), sent as `Authorization: Bearer TOKEN` "
            "(or ?token=); when the studio listens beyond loopback (--host), every request needs it. Errors are "
            '{"error": "one line saying what is wrong"} with a 4xx status.'
        ),
    },
    "components": {
        "securitySchemes": {
            "token": {"type": "http", "scheme": "bearer", "description": "the session token from the printed URL"}
        },
        "schemas": {
            "Error": {"type": "object", "required": ["error"], "properties": {"error": {"type": "string"}}},
            "Marks": {
                "type": "object",
                "description": "A person's decisions about a clip; stored in its sidecar under \"marks\". "
                "A person's verdict "
                "overrides curation's; null means not decided.",
                "required": ["verdict", "star", "regions"],
                "additionalProperties": False,
                "properties": {
                    "verdict": {"enum": ["keep", "discard", None]},
                    "star": {"type": "boolean"},
                    "regions": {
                        "type": "array",
                        "maxItems": 500,
                        "description": "keeper passages in seconds, start < end",
                        "items": {
                            "type": "array",
                            "prefixItems": [{"type": "number"}, {"type": "number"}],
                            "minItems": 2,
                            "maxItems": 2,
                        },
                    },
                },
            },
            "Clip": {
                "type": "object",
                "required": ["id", "folder", "status", "record", "audio_url"],
                "properties": {
                    "id": {"type": "string"},
                    "folder": {"type": "string", "description": "clips folder key"},
                    "status": {
                        "enum": ["ready", "generating", "unreadable"],
                        "description": "generating: audio or sidecar not written yet; unreadable: a broken sidecar",
                    },
                    "record": {
                        "type": ["object", "null"],
                        "description": "the clip's sidecar as inspire.clips reads it (format_version 2): "
                        "id, file, seconds, "
                        "sample_rate, temperature {spec, times_s, values}, checkpoint, seed, index, curation "
                        "{verdict, score, rank, reasons, features, lineage {fraction, matches}}, marks",
                    },
                    "audio_url": {"type": ["string", "null"], "description": "GET it (HTTP Range supported)"},
                    "waveform_url": {"type": ["string", "null"]},
                    "lineage_urls": {
                        "type": "array",
                        "items": {"type": "string"},
                        "description": "one WAV per lineage match: the source passage it echoes",
                    },
                    "error": {"type": "string"},
                },
            },
            "Waveform": {
                "type": "object",
                "description": "peaks.data: base64 uint8, max |x| per bucket (255 = full scale); "
                "spectrogram.data: base64 uint8 "
                "(columns x bands, row-major, low band first), 0 = floor_db below the loudest cell, 255 = loudest",
                "properties": {
                    "duration": {"type": "number"},
                    "sample_rate": {"type": "integer"},
                    "peaks": {"type": "object"},
                    "spectrogram": {"type": "object"},
                },
            },
            "Run": {
                "type": "object",
                "properties": {
                    "key": {"type": "string"},
                    "name": {"type": "string"},
                    "path": {"type": "string"},
                    "chosen": {
                        "type": ["string", "null"],
                        "description": "checkpoint chosen to generate from (RUN/studio.json)",
                    },
                    "checkpoints": {"type": "array", "items": {"type": "object"}},
                    "metrics_url": {"type": "string"},
                },
            },
        },
    },
    "paths": {
        "/": {"get": {"summary": "the studio page", "responses": {"200": {"description": "HTML"}}}},
        "/files/{root}/{path}": {
            "get": {
                "summary": "a file inside an opened folder (audio, previews); HTTP Range requests answer 206",
                "parameters": [_ROOT, _PATH],
                "responses": {
                    "200": {"description": "the file"},
                    "206": {"description": "the requested byte range"},
                    "404": _ERROR,
                },
            }
        },
        "/api/openapi.json": {
            "get": {"summary": "this document", "responses": {"200": {"description": "OpenAPI 3.1"}}}
        },
        "/api/docs": {"get": {"summary": "this document as a page", "responses": {"200": {"description": "HTML"}}}},
        "/api/folders": {
            "get": {
                "summary": "what was opened: roots, clips folders (key, path, run), runs",
                "responses": {"200": {"description": "folders"}},
            }
        },
        "/api/clips": {
            "get": {
                "summary": "every clip of the opened clips folders (or of ?folder=), ranked by curation",
                "parameters": [_FOLDER_Q],
                "responses": {
                    "200": {
                        "description": '{"clips": [Clip]}',
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "properties": {
                                        "clips": {"type": "array", "items": {"$ref": "#/components/schemas/Clip"}}
                                    },
                                }
                            }
                        },
                    },
                    "404": _ERROR,
                },
            }
        },
        "/api/clips/{id}": {
            "get": {
                "summary": "one clip",
                "parameters": [_ID, _FOLDER_Q],
                "responses": {"200": _json("Clip", "the clip"), "404": _ERROR, "409": _ERROR},
            }
        },
        "/api/clips/{id}/marks": {
            "put": {
                "summary": "set a clip's marks (verdict, star, keeper regions); "
                "written atomically into its sidecar under the clip "
                "record's lock",
                "security": [{"token": []}],
                "parameters": [_ID, _FOLDER_Q],
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Marks"}}},
                },
                "responses": {
                    "200": _json("Clip", "the stored clip record"),
                    "400": _ERROR,
                    "401": _ERROR,
                    "404": _ERROR,
                    "409": _ERROR,
                    "413": _ERROR,
                },
            }
        },
        "/api/clips/{id}/lineage/{n}.wav": {
            "get": {
                "summary": "the source passage the clip's n-th lineage match echoes, cut from the run's prepared data",
                "parameters": [
                    _ID,
                    {"name": "n", "in": "path", "required": True, "schema": {"type": "integer"}},
                    _FOLDER_Q,
                ],
                "responses": {"200": {"description": "audio/wav"}, "404": _ERROR},
            }
        },
        "/api/waveform/{root}/{path}": {
            "get": {
                "summary": "peaks and spectrogram of an audio file inside an opened folder (computed once, cached)",
                "parameters": [_ROOT, _PATH],
                "responses": {"200": _json("Waveform", "peaks and spectrogram"), "404": _ERROR, "422": _ERROR},
            }
        },
        "/api/runs": {
            "get": {
                "summary": "the opened runs: checkpoints with their previews, the chosen checkpoint",
                "responses": {"200": {"description": '{"runs": [Run]}'}},
            }
        },
        "/api/runs/{key}/metrics": {
            "get": {
                "summary": "the training log (metrics.jsonl) from line ?since= on; poll with the returned next",
                "parameters": [_RUN, {"name": "since", "in": "query", "schema": {"type": "integer", "minimum": 0}}],
                "responses": {
                    "200": {"description": '{"rows", "next", "baseline_bits"}'},
                    "400": _ERROR,
                    "404": _ERROR,
                },
            }
        },
        "/api/runs/{key}/checkpoint": {
            "put": {
                "summary": "choose the checkpoint to generate from (stored in RUN/studio.json)",
                "security": [{"token": []}],
                "parameters": [_RUN],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["checkpoint"],
                                "properties": {"checkpoint": {"type": ["string", "null"]}},
                            }
                        }
                    },
                },
                "responses": {"200": _json("Run", "the run"), "400": _ERROR, "401": _ERROR, "404": _ERROR},
            }
        },
    },
}


# ---- the arranger (studio/pieces.py): pieces and the keepers bin ----------------------------

_PIECE_ERROR = {
    "description": "refused: {\"error\": one line naming the part and field, \"field\": the field (crossfade_s, "
    "clip, out_s, name...), \"part\": its 0-based index or null}",
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/PieceError"}}},
}
_PIECE_PATH = {
    "name": "path",
    "in": "path",
    "required": True,
    "schema": {"type": "string"},
    "description": "the arrangement's path inside that folder, ending in .toml (e.g. pieces/NAME.toml)",
}
SPEC["components"]["schemas"].update({
    "PieceError": {
        "type": "object",
        "required": ["error"],
        "properties": {"error": {"type": "string"}, "field": {"type": ["string", "null"]},
                       "part": {"type": ["integer", "null"]}},
    },
    "Arrangement": {
        "type": "object",
        "description": "piece.toml as data (inspire.compose.arrangement): format_version, sample_rate, clips_dir, "
        "noise_reduction, lufs, true_peak, fade_in_s, fade_out_s and \"part\": [{clip, in_s, out_s, gain_db, "
        "crossfade_s}]. In a request a part may give \"file\" (\"r0/clips/job/ID.wav\", a clip in the opened "
        "folders) instead of or beside \"clip\", and \"note\" (a comment written above it).",
        "required": ["part"],
        "properties": {"part": {"type": "array", "minItems": 1, "items": {"type": "object"}}},
    },
    "PieceSave": {
        "type": "object",
        "required": ["arrangement"],
        "properties": {
            "arrangement": {"$ref": "#/components/schemas/Arrangement"},
            "clips_dir_at": {"type": ["string", "null"],
                             "description": "clips_dir as an opened folder (r0/clips/job): rebased to the piece"},
            "header": {"type": "string", "description": "the comment opening the file"},
            "overwrite": {"type": "boolean", "description": "replace an existing piece (else 409)"},
        },
    },
    "Piece": {
        "type": "object",
        "description": "an arrangement as the timeline shows it",
        "properties": {
            "root": {"type": "string"}, "path": {"type": "string"}, "name": {"type": "string"},
            "arrangement": {"$ref": "#/components/schemas/Arrangement"},
            "header": {"type": "string"}, "notes": {"type": "array", "items": {"type": "string"}},
            "clips_dir_at": {"type": ["string", "null"]},
            "parts": {"type": "array", "items": {"type": "object"},
                      "description": "each part's clip: id, file, audio_url, waveform_url, duration_s, verdict, "
                      "lineage [{clip_start_s, clip_end_s, track, source_start_s, similarity}]; or {error}"},
            "sample_rate": {"type": ["integer", "null"]}, "seconds": {"type": ["number", "null"]},
            "problem": {"type": ["object", "null"], "description": "what `inspire compose` would refuse, if anything"},
            "toml": {"type": "string"},
            "rendered": {"type": ["object", "null"],
                         "description": "the piece rendered beside it: audio_url, json_url, labels_url, stems"},
        },
    },
})
SPEC["paths"].update({
    "/api/pieces": {
        "get": {
            "summary": "every arrangement (piece.toml) in the opened folders, RUN/pieces/ first among them, "
            "and where new pieces can be saved (targets)",
            "responses": {"200": {"description": '{"pieces": [{root, path, name, parts, seconds, error, rendered}], '
                                                 '"targets": [{root, folder, run}]}'}},
        }
    },
    "/api/pieces/{root}/{path}": {
        "get": {
            "summary": "one arrangement as JSON, read with compose's own reader",
            "parameters": [_ROOT, _PIECE_PATH],
            "responses": {"200": _json("Piece", "the piece"), "404": _PIECE_ERROR, "422": _PIECE_ERROR},
        },
        "put": {
            "summary": "save an arrangement, from JSON (PieceSave) or its TOML text (Content-Type: application/toml, "
            "written as given); checked as `inspire compose` checks it; never replaces a file unless ?overwrite=1",
            "security": [{"token": []}],
            "parameters": [_ROOT, _PIECE_PATH,
                           {"name": "overwrite", "in": "query", "schema": {"type": "boolean"}}],
            "requestBody": {"required": True, "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/PieceSave"}},
                "application/toml": {"schema": {"type": "string"}}}},
            "responses": {"200": _json("Piece", "the saved piece"), "400": _PIECE_ERROR, "401": _ERROR,
                          "404": _PIECE_ERROR, "409": _PIECE_ERROR, "413": _PIECE_ERROR},
        },
    },
    "/api/pieces/toml": {
        "post": {
            "summary": "the TOML a JSON arrangement becomes when placed at \"at\" (r0/pieces/NAME.toml), checked "
            "but not written: what POST /api/render takes",
            "security": [{"token": []}],
            "requestBody": {"required": True, "content": {"application/json": {"schema": {
                "allOf": [{"$ref": "#/components/schemas/PieceSave"},
                          {"type": "object", "required": ["at"], "properties": {"at": {"type": "string"}}}]}}}},
            "responses": {"200": {"description": '{"toml", "arrangement", "at"}'}, "400": _PIECE_ERROR,
                          "401": _ERROR, "404": _PIECE_ERROR},
        }
    },
    "/api/keepers": {
        "get": {
            "summary": "the arranger's bin: every kept or starred clip whole, and keeper passages (a person's marked "
            "regions, else curation's), each with the lineage matches inside it; ?all=1: every clip",
            "parameters": [_FOLDER_Q, {"name": "all", "in": "query", "schema": {"type": "boolean"}}],
            "responses": {"200": {"description": '{"keepers": [{key, kind: clip|region, source, id, folder, file, '
                                                 'audio_url, waveform_url, duration_s, in_s, out_s, verdict, star, '
                                                 'rank, temperature, lineage}]}'}, "404": _PIECE_ERROR},
        }
    },
})


def html() -> str:
    """The API as a plain, self-contained page."""
    esc = _html.escape
    rows = []
    for path, ops in SPEC["paths"].items():
        for method, op in ops.items():
            params = ", ".join(p["name"] for p in op.get("parameters", []))
            lock = " (token)" if op.get("security") else ""
            statuses = ", ".join(op.get("responses", {}))
            rows.append(
                f"<tr><td><code>{method.upper()}</code></td><td><code>{esc(path)}</code></td>"
                f"<td>{esc(op['summary'])}{lock}</td><td>{esc(params)}</td><td>{esc(statuses)}</td></tr>"
            )
    marks = SPEC["components"]["schemas"]["Marks"]
    return (
        "<!doctype html><html lang=en><meta charset=utf-8><title>inspire studio API</title>"
        "<link rel=stylesheet href=/static/style.css><body class=docs>"
        f"<h1>inspire studio API {esc(SPEC['info']['version'])}</h1><p>{esc(SPEC['info']['description'])}</p>"
        "<p>Machine-readable: <a href=/api/openapi.json>/api/openapi.json</a> (OpenAPI 3.1).</p>"
        "<table><tr><th>method</th><th>path</th><th>what</th><th>parameters</th><th>statuses</th></tr>"
        + "".join(rows)
        + "</table>"
        f"<h2>Marks</h2><p>{esc(marks['description'])}</p>"
        '<pre>{"verdict": "keep" | "discard" | null, "star": true | false, "regions": [[start_s, end_s], ...]}</pre>'
        "<h2>Example</h2><pre>curl -X PUT -H 'Authorization: Bearer TOKEN' -H 'Content-Type: application/json' \\\n"
        '  -d \'{"verdict": "keep", "star": true, "regions": [[3.5, 9.0]]}\' \\\n'
        "  http://127.0.0.1:8737/api/clips/CLIP_ID/marks</pre></body></html>"
    )
