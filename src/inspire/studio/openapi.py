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
                "summary": "the opened runs: checkpoints with their previews, the chosen checkpoint, and labels (the "
                           "names a model trained with labels is steered by; [] without, null when unknown)",
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
        "/api/live": {
            "get": {
                "summary": "what the live panel can play: each run's checkpoints (with a file), the chosen one, its "
                "prepared tracks (id, name, seconds: the pads' sources); defaults; whether a performance is on",
                "responses": {"200": {"description": '{"runs": [...], "playing": bool, "defaults": {...}}'}},
            }
        },
    },
    # OpenAPI 3.1 has no words for a WebSocket; the live panel's is described here and on /api/docs.
    "x-websockets": {
        "/api/live/ws": {
            "summary": "the real-time engine of `inspire play` playing in the page (studio/live.py has the protocol)",
            "security": [{"token": []}],
            "description": (
                "Needs the token as ?token= or Authorization: Bearer (never the cookie alone); a browser's Origin "
                "must be the studio's own. The page sends JSON: "
                '{"type": "start", "run", "checkpoint", "temperature", "seed", "pads", "pad_seconds", "precision", '
                '"allow_slow", "buffer", "record", "device_rate"}; {"type": "set", "control": "temperature"|"nudge"|'
                '"pad"|"reset", "value"}; {"type": "record", "on": bool}; {"type": "ack", "played", "underruns"}; '
                '{"type": "stop"}. It gets JSON {"type": "loading"|"ready"|"stats"|"recording"|"take"|"stopped"|'
                '"error"} and binary audio frames: uint32 sequence, uint32 count, float64 position (little-endian), '
                "then count float32 samples at the model's rate. A take is RUN/clips/takes/<id>.wav with its sidecar, "
                "as `inspire play --record` writes it; `inspire generate RUN --again ID` renders it again exactly."
            ),
        }
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

# ---- jobs: generate and render in the background (studio/jobs.py), the corpus to prime from (studio/corpus.py)

_JOB_ID = {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}, "description": "the job's id"}
_TRACK = {"name": "id", "in": "path", "required": True, "schema": {"type": "string"},
          "description": "a prepared track's id (GET /api/runs/{key}/tracks)"}
_FIELD_ERROR = {
    "description": 'refused before anything started: {"error": the command line\'s own message, "field": the form '
                   'field it is about (+ "index" of a curve in a sweep, "part" and "key" of the arrangement)}',
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
}
_STARTED = {"description": '{"id": JOB, "job": Job}',
            "content": {"application/json": {"schema": {"type": "object", "required": ["id"], "properties": {
                "id": {"type": "string"}, "job": {"$ref": "#/components/schemas/Job"}}}}}}


def _post(summary: str, schema: dict | None, responses: dict, parameters: list | None = None) -> dict:
    op = {"summary": summary, "security": [{"token": []}], "responses": responses}
    if parameters:
        op["parameters"] = parameters
    if schema is not None:
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": schema}}}
    return {"post": op}


SPEC["components"]["schemas"]["Job"] = {
    "type": "object",
    "description": "A background job: `inspire generate` or `inspire compose` run as a subprocess (the command "
                   "line's own code). done/total count clips (generate) or the piece (render); fraction is finer "
                   "(seconds of audio made); clips are the ids of the clips finished so far; a job the studio stopped "
                   "with is failed with interrupted true, and resumes.",
    "required": ["id", "kind", "state", "done", "total", "clips", "error"],
    "properties": {
        "id": {"type": "string"},
        "kind": {"enum": ["generate", "render"]},
        "state": {"enum": ["queued", "running", "done", "failed", "cancelled"]},
        "run": {"type": ["string", "null"], "description": "run key"},
        "created": {"type": "string"}, "started": {"type": ["string", "null"]}, "ended": {"type": ["string", "null"]},
        "command": {"type": "string", "description": "the same job on the command line"},
        "request": {"type": "object"},
        "done": {"type": "number"}, "total": {"type": "number"}, "fraction": {"type": "number"},
        "eta_s": {"type": ["number", "null"]},
        "clips": {"type": "array", "items": {"type": "string"}},
        "folder": {"type": ["object", "null"], "description": "the clips folder: {path, key, name}"},
        "error": {"type": ["string", "null"], "description": "the command's one-line error"},
        "interrupted": {"type": "boolean"}, "cancelling": {"type": "boolean"},
        "log_url": {"type": ["string", "null"]},
        "outputs": {"type": ["object", "null"],
                    "description": "render: URLs of piece, arrangement, json, labels, stems; seconds; loudness"},
    },
}
_JOBS_PATHS = {
    "/api/runs/{key}/tracks": {"get": {
        "summary": "the run's prepared tracks (what the model heard), to prime generate from a moment of one",
        "parameters": [_RUN],
        "responses": {"200": {"description": '{"tracks": [...], "sample_rate"}'}, "404": _ERROR}}},
    "/api/runs/{key}/tracks/{id}/waveform": {"get": {
        "summary": "peaks + spectrogram of a prepared track", "parameters": [_RUN, _TRACK],
        "responses": {"200": _json("Waveform", "peaks and spectrogram"), "404": _ERROR}}},
    "/api/runs/{key}/tracks/{id}/excerpt.wav": {"get": {
        "summary": "a stretch of a prepared track as WAV (?start=S&seconds=N, N <= 30)", "parameters": [
            _RUN, _TRACK, {"name": "start", "in": "query", "schema": {"type": "number", "minimum": 0}},
            {"name": "seconds", "in": "query", "schema": {"type": "number", "exclusiveMinimum": 0, "maximum": 30}}],
        "responses": {"200": {"description": "audio/wav"}, "400": _ERROR, "404": _ERROR}}},
    "/api/schedule": _post(
        "check a temperature, min-p or top-p curve with `inspire generate`'s own parser: its breakpoints "
        "(resolved in seconds for a clip of `seconds`)",
        {"type": "object", "required": ["spec"], "properties": {
            "spec": {"type": "string"}, "seconds": {"type": "number"},
            "control": {"enum": ["temperature", "min-p", "top-p"], "description": "default temperature"}}},
        {"200": {"description": '{"spec", "control", "unit", "positions", "values", '
                                '"resolved": {"times_s", "values"}}'},
         "400": _FIELD_ERROR, "401": _ERROR}),
    "/api/steer": _post(
        "check a steering curve (`inspire generate --steer`) against a run's labels and resolve it for drawing: "
        "each label's mixing weight at the clip's ends and breakpoints (linear in between); 400 with the command "
        "line's message for an unknown label (listing the known ones) or a model trained without labels",
        {"type": "object", "required": ["spec"], "properties": {
            "run": {"type": "string", "description": "run key (optional when one run is open)"},
            "spec": {"type": "string",
                     "description": "nebula, nebula:through-space or 0s:nebula,20s:through-space,45s:none"},
            "seconds": {"type": "number", "description": "the clip's length (default 1: times are fractions)"}}},
        {"200": {"description": '{"spec", "unit", "positions", "labels_at", "labels" (the run\'s), "seconds", '
                                '"times_s", "series": [{"label", "row" (0: none), "weights"}]}'},
         "400": _FIELD_ERROR, "401": _ERROR, "404": _ERROR}),
    "/api/generate": _post(
        "start `inspire generate` as a job; per run one generate runs at a time, the next waits queued",
        {"type": "object", "additionalProperties": False, "properties": {
            "run": {"type": "string", "description": "run key (optional when one run is open)"},
            "checkpoint": {"type": ["string", "integer"],
                           "description": "best, last or a step (default: the one chosen in the runs view, else best)"},
            "n": {"type": "integer", "minimum": 1}, "seconds": {"type": "number", "exclusiveMinimum": 0},
            "temperature": {"type": "array", "items": {"type": "string"},
                            "description": "schedules (1.0, 0.875:1.15, 0s:0.9,20s:1.1); several make a sweep"},
            "min_p": {"type": "array", "items": {"type": "string"},
                      "description": "min-p truncation curves in [0, 1) (--min-p; 0 = off); several sweep"},
            "top_p": {"type": "array", "items": {"type": "string"},
                      "description": "top-p truncation curves in (0, 1] (--top-p; 1 = off); several sweep"},
            "guard": {"type": "boolean", "description": "the collapse guard (--guard; not with steer)"},
            "steer": {"type": "array", "items": {"type": "string"},
                      "description": "steering curves over the run's labels (--steer; a model trained with labels)"},
            "guidance": {"type": "number", "minimum": 0, "maximum": 10, "description": "--guidance, with steer"},
            "seed": {"type": "integer"},
            "prime": {"description": '"corpus" (a random stretch per clip) or {"track", "start_s", "seconds"}'}}},
        {"202": _STARTED, "400": _FIELD_ERROR, "401": _ERROR, "409": _ERROR}),
    "/api/render": _post(
        "write RUN/pieces/NAME.toml and render it with `inspire compose` (48 kHz 24-bit by default) as a job; "
        "409 when the piece exists and overwrite is not true",
        {"type": "object", "required": ["arrangement", "name"], "additionalProperties": False, "properties": {
            "arrangement": {"type": "string", "description": "the piece.toml text (compose/arrangement.py)"},
            "name": {"type": "string"}, "run": {"type": "string", "description": "optional when one run is open"},
            "overwrite": {"type": "boolean"}, "stems": {"type": "boolean"},
            "sample_rate": {"type": "integer"}, "bit_depth": {"enum": [16, 24, 32]}}},
        {"202": _STARTED, "400": _FIELD_ERROR, "401": _ERROR, "409": _ERROR}),
    "/api/jobs": {"get": {
        "summary": "every job of the opened runs, newest first (?run=KEY: one run's)",
        "parameters": [{"name": "run", "in": "query", "schema": {"type": "string"}}],
        "responses": {"200": {"description": '{"jobs": [Job]}'}, "404": _ERROR}}},
    "/api/jobs/{id}": {"get": {"summary": "one job", "parameters": [_JOB_ID],
                               "responses": {"200": _json("Job", "the job"), "404": _ERROR}}},
    "/api/jobs/{id}/cancel": _post(
        "stop a queued or running job (SIGTERM: generate keeps the clips it finished)", None,
        {"200": _json("Job", "the job (cancelling until it has stopped)"), "401": _ERROR, "404": _ERROR,
         "409": _ERROR}, [_JOB_ID]),
    "/api/jobs/{id}/resume": _post(
        "run a failed, cancelled or interrupted job's command again (generate skips finished clips)", None,
        {"200": _json("Job", "the job, queued"), "401": _ERROR, "404": _ERROR, "409": _ERROR}, [_JOB_ID]),
}
SPEC["paths"].update(_JOBS_PATHS)


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
        + "".join(f"<h2>WebSocket <code>{esc(path)}</code> (token)</h2><p>{esc(ws['summary'])}</p>"
                  f"<p>{esc(ws['description'])}</p>" for path, ws in SPEC["x-websockets"].items())
        + f"<h2>Marks</h2><p>{esc(marks['description'])}</p>"
        '<pre>{"verdict": "keep" | "discard" | null, "star": true | false, "regions": [[start_s, end_s], ...]}</pre>'
        "<h2>Example</h2><pre>curl -X PUT -H 'Authorization: Bearer TOKEN' -H 'Content-Type: application/json' \\\n"
        '  -d \'{"verdict": "keep", "star": true, "regions": [[3.5, 9.0]]}\' \\\n'
        "  http://127.0.0.1:8737/api/clips/CLIP_ID/marks</pre></body></html>"
    )
