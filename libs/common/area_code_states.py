"""The US state or Canadian province of each geographic NANP area code, as data.

Made from ``phonenumbers``' geocoder, which is not imported at run time: its data costs a process about
100 MB of memory, and an area code's state is all the quiet hours need. ``python -m libs.common.area_code_states``
prints the table again from the installed ``phonenumbers`` (tests/unit/test_quiet_hours.py checks that it
still agrees). An area code mapped to "" is geographic (it has a place and zones) but in no state or
province (the Caribbean, the Pacific territories); one not in the table is not geographic (toll-free).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

__all__ = ["AREA_CODE_STATES", "STATE_CODES", "from_geocoder"]

# The geocoder names an area code's state or province ("Oklahoma") or a city in it ("Los Angeles, CA").
STATE_CODES: Final[Mapping[str, str]] = {
    "Alabama": "AL", "Alaska": "AK", "Arizona": "AZ", "Arkansas": "AR", "California": "CA", "Colorado": "CO",
    "Connecticut": "CT", "Delaware": "DE", "District of Columbia": "DC", "Washington D.C.": "DC",
    "Florida": "FL", "Georgia": "GA", "Hawaii": "HI", "Idaho": "ID", "Illinois": "IL", "Indiana": "IN",
    "Iowa": "IA", "Kansas": "KS", "Kentucky": "KY", "Louisiana": "LA", "Maine": "ME", "Maryland": "MD",
    "Massachusetts": "MA", "Michigan": "MI", "Minnesota": "MN", "Mississippi": "MS", "Missouri": "MO",
    "Montana": "MT", "Nebraska": "NE", "Nevada": "NV", "New Hampshire": "NH", "New Jersey": "NJ",
    "New Mexico": "NM", "New York": "NY", "North Carolina": "NC", "North Dakota": "ND", "Ohio": "OH",
    "Oklahoma": "OK", "Oregon": "OR", "Pennsylvania": "PA", "Rhode Island": "RI", "South Carolina": "SC",
    "South Dakota": "SD", "Tennessee": "TN", "Texas": "TX", "Utah": "UT", "Vermont": "VT", "Virginia": "VA",
    "Washington": "WA", "West Virginia": "WV", "Wisconsin": "WI", "Wyoming": "WY",
    "Alberta": "AB", "British Columbia": "BC", "Manitoba": "MB", "New Brunswick": "NB",
    "Newfoundland and Labrador": "NL", "Northwest Territories": "NT", "Nova Scotia": "NS", "Nunavut": "NU",
    "Ontario": "ON", "Prince Edward Island": "PE", "Quebec": "QC", "Saskatchewan": "SK", "Yukon": "YT",
}

# From phonenumbers 9.0.43 (python -m libs.common.area_code_states).
AREA_CODE_STATES: Final[Mapping[str, str]] = {
    "201": "NJ", "202": "DC", "203": "CT", "204": "MB", "205": "AL", "206": "WA", "207": "ME", "208": "ID", "209": "CA",
    "210": "TX", "212": "NY", "213": "CA", "214": "TX", "215": "PA", "216": "OH", "217": "IL", "218": "MN", "219": "IN",
    "220": "OH", "223": "PA", "224": "IL", "225": "LA", "226": "ON", "227": "MD", "228": "MS", "229": "GA", "231": "MI",
    "234": "OH", "235": "MO", "236": "BC", "239": "FL", "240": "MD", "248": "MI", "249": "ON", "250": "BC", "251": "AL",
    "252": "NC", "253": "WA", "254": "TX", "256": "AL", "257": "", "260": "IN", "262": "WI", "263": "QC", "267": "PA",
    "269": "MI", "270": "KY", "272": "PA", "273": "QC", "274": "WI", "276": "VA", "279": "CA", "281": "TX", "283": "OH",
    "289": "ON", "301": "MD", "302": "DE", "303": "CO", "304": "WV", "305": "FL", "306": "SK", "307": "WY", "308": "NE",
    "309": "IL", "310": "CA", "312": "IL", "313": "MI", "314": "MO", "315": "NY", "316": "KS", "317": "IN", "318": "LA",
    "319": "IA", "320": "MN", "321": "FL", "323": "CA", "324": "FL", "325": "TX", "326": "OH", "327": "AR", "329": "NY",
    "330": "OH", "331": "IL", "332": "NY", "334": "AL", "336": "NC", "337": "LA", "339": "MA", "340": "", "341": "CA",
    "343": "ON", "345": "", "346": "TX", "347": "NY", "350": "CA", "351": "MA", "352": "FL", "353": "WI", "354": "QC",
    "360": "WA", "361": "TX", "363": "NY", "364": "KY", "365": "ON", "367": "QC", "368": "AB", "369": "CA", "380": "OH",
    "382": "ON", "385": "UT", "386": "FL", "401": "RI", "402": "NE", "403": "AB", "404": "GA", "405": "OK", "406": "MT",
    "407": "FL", "408": "CA", "409": "TX", "410": "MD", "412": "PA", "413": "MA", "414": "WI", "415": "CA", "416": "ON",
    "417": "MO", "418": "QC", "419": "OH", "423": "TN", "424": "CA", "425": "WA", "428": "NB", "430": "TX", "431": "MB",
    "432": "TX", "434": "VA", "435": "UT", "437": "ON", "438": "QC", "440": "OH", "441": "", "442": "CA", "443": "MD",
    "445": "PA", "447": "IL", "448": "FL", "450": "QC", "458": "OR", "463": "IN", "464": "IL", "468": "QC", "469": "TX",
    "470": "GA", "472": "NC", "474": "SK", "475": "CT", "478": "GA", "479": "AR", "480": "AZ", "484": "PA", "501": "AR",
    "502": "KY", "503": "OR", "504": "LA", "505": "NM", "506": "NB", "507": "MN", "508": "MA", "509": "", "510": "CA",
    "512": "TX", "513": "OH", "514": "QC", "515": "IA", "516": "NY", "517": "MI", "518": "NY", "519": "ON", "520": "AZ",
    "530": "CA", "531": "NE", "534": "WI", "539": "OK", "540": "VA", "541": "OR", "548": "ON", "551": "NJ", "557": "MO",
    "559": "CA", "561": "FL", "562": "CA", "563": "IA", "564": "", "567": "OH", "570": "PA", "571": "VA", "572": "OK",
    "573": "MO", "574": "IN", "575": "NM", "579": "QC", "580": "OK", "581": "QC", "582": "PA", "584": "MB", "585": "NY",
    "586": "MI", "587": "AB", "600": "", "601": "MS", "602": "AZ", "603": "NH", "604": "BC", "605": "SD", "606": "KY",
    "607": "NY", "608": "WI", "609": "NJ", "610": "PA", "612": "MN", "613": "ON", "614": "OH", "615": "TN", "616": "MI",
    "617": "MA", "618": "IL", "619": "CA", "620": "KS", "622": "", "623": "AZ", "626": "CA", "628": "CA", "629": "TN",
    "630": "IL", "631": "NY", "633": "", "636": "MO", "639": "SK", "640": "NJ", "641": "IA", "645": "FL", "646": "NY",
    "647": "ON", "650": "CA", "651": "MN", "656": "FL", "657": "CA", "658": "", "659": "AL", "660": "MO", "661": "CA",
    "662": "MS", "667": "MD", "669": "CA", "670": "", "671": "", "672": "BC", "678": "GA", "680": "NY", "681": "WV",
    "682": "TX", "683": "ON", "686": "VA", "689": "FL", "701": "ND", "702": "NV", "703": "VA", "704": "NC", "705": "ON",
    "706": "GA", "707": "CA", "708": "IL", "709": "NL", "712": "IA", "713": "TX", "714": "CA", "715": "WI", "716": "NY",
    "717": "PA", "718": "NY", "719": "CO", "720": "CO", "724": "PA", "725": "NV", "726": "TX", "727": "FL", "728": "FL",
    "730": "IL", "731": "TN", "732": "NJ", "734": "MI", "737": "TX", "738": "CA", "740": "OH", "742": "ON", "743": "NC",
    "747": "CA", "748": "CO", "753": "ON", "754": "FL", "757": "VA", "760": "CA", "762": "GA", "763": "MN", "765": "IN",
    "769": "MS", "770": "GA", "771": "DC", "772": "FL", "773": "IL", "774": "MA", "775": "NV", "778": "BC", "779": "IL",
    "780": "AB", "781": "MA", "782": "", "784": "", "785": "KS", "786": "FL", "787": "", "801": "UT", "802": "VT",
    "803": "SC", "804": "VA", "805": "CA", "806": "TX", "807": "ON", "808": "HI", "809": "", "810": "MI", "812": "IN",
    "813": "FL", "814": "PA", "815": "IL", "816": "MO", "817": "TX", "818": "CA", "819": "QC", "820": "CA", "821": "SC",
    "825": "AB", "826": "VA", "828": "NC", "829": "", "830": "TX", "831": "CA", "832": "TX", "835": "PA", "838": "NY",
    "839": "SC", "840": "CA", "843": "SC", "845": "NY", "847": "IL", "848": "NJ", "849": "", "850": "FL", "854": "SC",
    "856": "NJ", "857": "MA", "858": "CA", "859": "KY", "860": "CT", "862": "NJ", "863": "FL", "864": "SC", "865": "TN",
    "867": "", "870": "AR", "872": "IL", "873": "QC", "876": "", "878": "PA", "879": "NL", "901": "TN", "902": "",
    "903": "TX", "904": "FL", "905": "ON", "906": "MI", "907": "AK", "908": "NJ", "909": "CA", "910": "NC", "912": "GA",
    "913": "KS", "914": "NY", "915": "TX", "916": "CA", "917": "NY", "918": "OK", "919": "NC", "920": "WI", "925": "CA",
    "928": "AZ", "929": "NY", "930": "IN", "931": "TN", "934": "NY", "936": "TX", "937": "OH", "938": "AL", "939": "",
    "940": "TX", "941": "FL", "942": "ON", "943": "GA", "945": "TX", "947": "MI", "948": "VA", "949": "CA", "951": "CA",
    "952": "MN", "954": "FL", "956": "TX", "959": "CT", "970": "CO", "971": "OR", "972": "TX", "973": "NJ", "975": "MO",
    "978": "MA", "979": "TX", "980": "NC", "983": "CO", "984": "NC", "985": "LA", "986": "ID", "989": "MI",
}


def from_geocoder() -> dict[str, str]:
    """The table as the installed ``phonenumbers`` geocoder gives it (sampling a few exchanges per area code)."""
    import phonenumbers  # noqa: PLC0415 - only to make the table: the geocoder's data is large
    from phonenumbers import geocoder  # noqa: PLC0415

    codes = frozenset(STATE_CODES.values())
    table: dict[str, str] = {}
    for area in range(200, 1000):
        for exchange in ("200", "555", "867", "930"):
            try:
                description = geocoder.description_for_number(phonenumbers.parse(f"+1{area}{exchange}0100"), "en")
            except phonenumbers.NumberParseException:
                continue
            if not description:
                continue
            state = STATE_CODES.get(description)
            if state is None and ", " in description:
                tail = description.rsplit(", ", 1)[1]
                state = tail if tail in codes else None
            if state is not None or str(area) not in table:
                table[str(area)] = state or ""
            if state is not None:
                break
    return table


if __name__ == "__main__":
    rows = sorted(from_geocoder().items())
    print("AREA_CODE_STATES: Final[Mapping[str, str]] = {")  # noqa: T201 - the table, to paste above
    for start in range(0, len(rows), 9):
        print("    " + " ".join(f'"{a}": "{s}",' for a, s in rows[start:start + 9]))  # noqa: T201
    print("}")  # noqa: T201
