"""The one palette of the kiosk: every colour a screen uses, by role.

Every text colour on the background it is used on is at least 4.5:1
(WCAG 2.2 AA); the pairs in :data:`CONTRAST_PAIRS` are checked by
``tests/test_readability.py``. kv files take colours from here::

    #:import P screens.palette.PALETTE
    color: P["ink"]
"""

#: How much larger text gets with the "Larger text" button, on every screen.
LARGE_TEXT_SCALE = 1.35

#: name -> RGBA; pairs used together are listed in CONTRAST_PAIRS.
PALETTE = {
    "ink": (0.12, 0.16, 0.20, 1),          # main text
    "muted": (0.30, 0.34, 0.38, 1),        # secondary text
    "paper": (0.97, 0.96, 0.94, 1),        # screen background
    "primary": (0.11, 0.31, 0.54, 1),      # main action
    "primary_down": (0.07, 0.21, 0.38, 1),
    "secondary": (0.89, 0.91, 0.94, 1),    # other buttons
    "secondary_down": (0.78, 0.82, 0.87, 1),
    "selected": (0.04, 0.43, 0.31, 1),     # a chosen answer
    "calm": (0.90, 0.94, 0.97, 1),         # emergency screen background
    "white": (1, 1, 1, 1),
    "warn": (0.55, 0.25, 0.0, 1),          # small warnings on paper
    "track": (0.79, 0.83, 0.86, 1),        # progress track, card edges (no text)
    "caption_back": (0, 0, 0, 1),          # behind captions over a video (drawn at 80 %)
}

CONTRAST_PAIRS = [
    ("ink", "paper"), ("muted", "paper"), ("white", "primary"), ("white", "primary_down"),
    ("ink", "secondary"), ("ink", "secondary_down"), ("white", "selected"), ("ink", "calm"),
    ("warn", "paper"), ("selected", "paper"), ("selected", "calm"),
    # the media screens: technique cards, the video player, the attract loop
    ("ink", "white"), ("white", "ink"), ("primary", "paper"), ("white", "caption_back"),
]
