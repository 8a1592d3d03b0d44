"""The questionnaire engine: FHIR R4 Questionnaires and content packs.

- :mod:`.model`: items, options, packs and answer checking (imports nothing
  of the project);
- :mod:`.reader`: Questionnaire JSON into the model, with every problem as a
  ``path:location: message`` line;
- :mod:`.expressions`: enableWhen and the SDC FHIRPath extensions;
- :mod:`.response`: the QuestionnaireResponse of a visit;
- :mod:`.loader`: pack folders and bare Questionnaire files.

The names most code needs are here::

    >>> from kiosk.questionnaire import load_pack
    >>> load_pack().item("rf-saddle").type
    'boolean'
"""

from .expressions import State, enable_when_holds, resolve
from .loader import DEFAULT_PACK, load_pack
from .model import EnableWhen, Item, Option, Pack, PackError, Unit
from .response import questionnaire_response

__all__ = [
    "DEFAULT_PACK", "EnableWhen", "Item", "Option", "Pack", "PackError", "State", "Unit", "enable_when_holds",
    "load_pack", "questionnaire_response", "resolve",
]
