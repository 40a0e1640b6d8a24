"""Calibration tables of the synthetic world (sources in docs/simulator.md).

Everything here is data: sending-country shares, currencies, time zones, approximate FX levels used
only to *generate* amounts, names, regions and reference vocabularies.
"""

from __future__ import annotations

# --------------------------------------------------------------------------------------------
# Countries: currency sent, standard UTC offset(s) in hours, DST hemisphere, name culture.
# Taiwan and Kuwait senders send in USD (TWD/KWD are not in ECB reference rates nor USD pegs).
# --------------------------------------------------------------------------------------------
COUNTRY: dict[str, dict] = {
    "US": {"cur": "USD", "tz": (-5, -6, -7, -8), "tzw": (0.47, 0.29, 0.07, 0.17), "dst": "N", "names": "us"},
    "CA": {"cur": "CAD", "tz": (-5, -6, -7, -8), "tzw": (0.55, 0.1, 0.15, 0.2), "dst": "N", "names": "en"},
    "GB": {"cur": "GBP", "tz": (0,), "dst": "N", "names": "en"},
    "IE": {"cur": "EUR", "tz": (0,), "dst": "N", "names": "en"},
    "AU": {"cur": "AUD", "tz": (10, 9.5, 8), "tzw": (0.75, 0.1, 0.15), "dst": "S", "names": "en"},
    "NZ": {"cur": "NZD", "tz": (12,), "dst": "S", "names": "en"},
    "DE": {"cur": "EUR", "tz": (1,), "dst": "N", "names": "de"},
    "AT": {"cur": "EUR", "tz": (1,), "dst": "N", "names": "de"},
    "CH": {"cur": "CHF", "tz": (1,), "dst": "N", "names": "de"},
    "NL": {"cur": "EUR", "tz": (1,), "dst": "N", "names": "nl"},
    "FR": {"cur": "EUR", "tz": (1,), "dst": "N", "names": "fr"},
    "IT": {"cur": "EUR", "tz": (1,), "dst": "N", "names": "it"},
    "ES": {"cur": "EUR", "tz": (1,), "dst": "N", "names": "es"},
    "SE": {"cur": "SEK", "tz": (1,), "dst": "N", "names": "nordic"},
    "NO": {"cur": "NOK", "tz": (1,), "dst": "N", "names": "nordic"},
    "DK": {"cur": "DKK", "tz": (1,), "dst": "N", "names": "nordic"},
    "JP": {"cur": "JPY", "tz": (9,), "dst": "", "names": "jp"},
    "KR": {"cur": "KRW", "tz": (9,), "dst": "", "names": "kr"},
    "TW": {"cur": "USD", "tz": (8,), "dst": "", "names": "cn"},
    "HK": {"cur": "HKD", "tz": (8,), "dst": "", "names": "cn"},
    "SG": {"cur": "SGD", "tz": (8,), "dst": "", "names": "cn"},
    "MY": {"cur": "MYR", "tz": (8,), "dst": "", "names": "cn"},
    "SA": {"cur": "SAR", "tz": (3,), "dst": "", "names": "ar"},
    "AE": {"cur": "AED", "tz": (4,), "dst": "", "names": "ar"},
    "QA": {"cur": "QAR", "tz": (3,), "dst": "", "names": "ar"},
    "KW": {"cur": "USD", "tz": (3,), "dst": "", "names": "ar"},
    "PH": {"cur": "PHP", "tz": (8,), "dst": "", "names": "ph"},
}

# Approximate 2025 levels, USD per unit: only used to turn generated USD amounts into plausible
# sending-currency amounts. The scanner converts back with its own (ECB-based) table.
USD_PER_UNIT: dict[str, float] = {
    "USD": 1.0, "CAD": 0.72, "GBP": 1.31, "EUR": 1.12, "AUD": 0.65, "NZD": 0.59, "CHF": 1.18,
    "SEK": 0.102, "NOK": 0.095, "DKK": 0.150, "JPY": 0.0068, "KRW": 0.00072, "HKD": 0.128,
    "SGD": 0.76, "MYR": 0.226, "SAR": 0.2667, "AED": 0.2723, "QAR": 0.2747, "PHP": 0.0175,
}
# Currencies written without decimals.
ZERO_DECIMAL = frozenset({"JPY", "KRW"})
# Step of a "round" amount in the sending currency (multiples people type).
ROUND_STEP: dict[str, float] = {
    "USD": 5, "CAD": 5, "GBP": 5, "EUR": 5, "AUD": 5, "NZD": 5, "CHF": 5, "SEK": 50, "NOK": 50,
    "DKK": 50, "JPY": 1000, "KRW": 10000, "HKD": 50, "SGD": 5, "MYR": 10, "SAR": 10, "AED": 10,
    "QAR": 10, "PHP": 100,
}

# Where OFW senders are (blend of BSP 2024 cash-remittance shares by reporting country and PSA SOF
# 2023 deployment shares; the BSP US share is overstated by courier HQs, PSA puts SA 20%, AE 13.6%).
OFW_COUNTRIES: dict[str, float] = {
    "US": 0.26, "SA": 0.11, "AE": 0.09, "SG": 0.07, "JP": 0.05, "GB": 0.045, "CA": 0.045,
    "QA": 0.04, "KW": 0.03, "HK": 0.04, "TW": 0.03, "KR": 0.025, "IT": 0.02, "AU": 0.02,
    "MY": 0.01, "DE": 0.01, "NZ": 0.005, "ES": 0.005, "NO": 0.005, "CH": 0.005,
}
# Foreign (non-OFW) senders: partners, clients, donors, shoppers, tourists. Western-heavy.
FOREIGN_COUNTRIES: dict[str, float] = {
    "US": 0.38, "GB": 0.09, "AU": 0.10, "CA": 0.07, "DE": 0.05, "NL": 0.025, "SE": 0.02,
    "NO": 0.015, "DK": 0.01, "FR": 0.025, "IT": 0.015, "ES": 0.01, "CH": 0.015, "AT": 0.01,
    "IE": 0.01, "NZ": 0.02, "JP": 0.04, "KR": 0.03, "SG": 0.02, "HK": 0.015, "SA": 0.01,
    "AE": 0.01,
}
# OSEC customers: AMLC order of source countries (US about half, then UK, AU, CA, SA, DE, JP, SG,
# FR, NL), plus SE (ECPAT Sweden judgments) and NO/DK/CH/AT/NZ/IE.
CUSTOMER_COUNTRIES: dict[str, float] = {
    "US": 0.46, "GB": 0.11, "AU": 0.10, "CA": 0.06, "SA": 0.02, "DE": 0.05, "JP": 0.025,
    "SG": 0.02, "FR": 0.02, "NL": 0.02, "SE": 0.025, "NO": 0.01, "DK": 0.01, "CH": 0.01,
    "AT": 0.01, "NZ": 0.01, "IE": 0.01,
}
OTHER_RECEIVER_COUNTRIES = ("TH", "VN", "ID", "MY")

# Philippine receiver regions/provinces with rough weights (population x OFW-household share).
PH_REGIONS: dict[str, float] = {
    "Metro Manila": 0.17, "Cavite": 0.06, "Laguna": 0.055, "Bulacan": 0.055, "Rizal": 0.04,
    "Pampanga": 0.045, "Batangas": 0.045, "Pangasinan": 0.045, "Cebu": 0.05, "Iloilo": 0.03,
    "Negros Occidental": 0.03, "Davao del Sur": 0.035, "Nueva Ecija": 0.03, "Tarlac": 0.02,
    "Ilocos Norte": 0.015, "Ilocos Sur": 0.015, "La Union": 0.015, "Isabela": 0.02,
    "Cagayan": 0.015, "Benguet": 0.01, "Quezon": 0.025, "Camarines Sur": 0.02, "Albay": 0.015,
    "Leyte": 0.02, "Bohol": 0.015, "Misamis Oriental": 0.015, "South Cotabato": 0.02,
    "Zamboanga del Sur": 0.015, "Palawan": 0.01, "Bukidnon": 0.01, "Taguig": 0.01,
}
NCR_SPELLINGS = ("Metro Manila", "NCR", "National Capital Region", "Metro Manila")
# Provinces named in OSEC case reports (research note I-22): a mild, configurable tilt only.
CASE_REGIONS = ("Bulacan", "Taguig", "Cebu", "Pampanga", "South Cotabato", "Metro Manila")

# --------------------------------------------------------------------------------------------
# Names
# --------------------------------------------------------------------------------------------
PH_SURNAMES = (
    "Dela Cruz", "Santos", "Reyes", "Garcia", "Mendoza", "Bautista", "Del Rosario", "De los Santos",
    "Cruz", "Ramos", "Aquino", "Villanueva", "Gonzales", "Castillo", "Fernandez", "Lopez", "Torres",
    "Flores", "Rivera", "Tolentino", "Navarro", "Mercado", "Aguilar", "De Guzman", "Pascual",
    "Santiago", "Salazar", "Soriano", "Manalo", "Dizon", "Domingo", "Francisco", "Gutierrez",
    "Valdez", "Castro", "Marquez", "Delos Reyes", "San Juan", "Macaraeg", "Magbanua", "Panganiban",
    "Dimaculangan", "Lacson", "Sison", "Tan", "Lim", "Ocampo", "Cabrera", "Morales", "Perez",
    "Ramirez", "Hernandez", "Diaz", "Vergara", "Agustin", "Alvarez", "Enriquez", "Evangelista",
    "Padilla", "Rosales", "Samson", "Legaspi", "Buenaventura", "De Leon", "Dela Pena", "Esguerra",
    "Ignacio", "Javier", "Lualhati", "Mangubat", "Nepomuceno", "Obispo", "Quiambao", "Tiongson",
)
PH_FEMALE = (
    "Maria", "Ana", "Rosalie", "Jocelyn", "Marites", "Cristina", "Liza", "Jennifer", "Michelle",
    "Angelica", "Joy", "Grace", "Mary Ann", "Kristine", "Rowena", "Lorna", "Evelyn", "Analyn",
    "Jasmine", "Divina", "Rhea", "Shiela", "Maricel", "Marilou", "Nenita", "Erlinda", "Leonora",
    "Imelda", "Josephine", "Ruby", "April", "Princess", "Janine", "Camille", "Lovely", "Charmaine",
)
PH_MALE = (
    "Jose", "Juan", "Mark", "John Paul", "Christian", "Rodel", "Ramon", "Eduardo", "Romeo", "Ernesto",
    "Reynaldo", "Danilo", "Jericho", "Paolo", "Carlo", "Miguel", "Rogelio", "Arnel", "Noel",
    "Ronaldo", "Alvin", "Marvin", "Jerome", "Dennis", "Ariel", "Rommel", "Jayson", "Ricardo",
)
PH_SECOND_F = ("Cristina", "Luisa", "Teresa", "Isabel", "Victoria", "Fe", "Rosario", "Elena", "Carmela", "Joy")
PH_SECOND_M = ("Antonio", "Miguel", "Angelo", "Rafael", "Vincent", "Luis", "Emmanuel", "Gabriel", "Jose", "Paul")

FOREIGN_NAMES: dict[str, tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]] = {
    # culture: (male first names, female first names, surnames)
    "en": (
        ("James", "John", "Robert", "Michael", "William", "David", "Richard", "Joseph", "Thomas",
         "Christopher", "Daniel", "Matthew", "Anthony", "Mark", "Steven", "Paul", "Andrew", "Kevin",
         "Brian", "George", "Timothy", "Ronald", "Jason", "Edward", "Gary", "Peter", "Stephen",
         "Graham", "Neil", "Craig", "Gavin", "Trevor", "Wayne", "Barry", "Keith", "Colin"),
        ("Mary", "Patricia", "Jennifer", "Linda", "Elizabeth", "Susan", "Karen", "Sarah", "Emma",
         "Helen", "Rachel", "Laura", "Claire", "Fiona", "Julie", "Nicole"),
        ("Smith", "Johnson", "Williams", "Brown", "Jones", "Miller", "Davis", "Wilson", "Anderson",
         "Taylor", "Thomas", "Moore", "Martin", "Jackson", "Thompson", "White", "Harris", "Clark",
         "Lewis", "Robinson", "Walker", "Young", "Allen", "King", "Wright", "Scott", "Hill", "Green",
         "Adams", "Baker", "Nelson", "Campbell", "Mitchell", "Roberts", "Carter", "Phillips",
         "Evans", "Turner", "Parker", "Collins", "Edwards", "Stewart", "Morris", "Murphy", "Cook",
         "Rogers", "Morgan", "Cooper", "Reed", "Bailey", "Kelly", "Ward", "Richardson", "Wood",
         "Watson", "Brooks", "Bennett", "Gray", "Hughes", "Price", "O'Brien", "MacDonald"),
    ),
    "us": (
        (), (),
        ("Garcia", "Rodriguez", "Martinez", "Hernandez", "Lopez", "Gonzalez", "Perez", "Sanchez",
         "Ramirez", "Torres", "Flores", "Rivera", "Gomez", "Diaz", "Cruz", "Reyes", "Morales",
         "Nguyen", "Kim", "Patel"),
    ),
    "de": (
        ("Thomas", "Michael", "Andreas", "Stefan", "Peter", "Klaus", "Jürgen", "Wolfgang", "Frank",
         "Uwe", "Markus", "Matthias", "Dieter", "Holger"),
        ("Sabine", "Petra", "Claudia", "Andrea", "Monika"),
        ("Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Meyer", "Wagner", "Becker", "Schulz",
         "Hoffmann", "Koch", "Richter", "Klein", "Wolf", "Schröder", "Neumann", "Braun", "Zimmermann"),
    ),
    "nordic": (
        ("Lars", "Anders", "Johan", "Per", "Erik", "Karl", "Nils", "Magnus", "Mikael", "Björn", "Ole",
         "Henrik", "Jens"),
        ("Anna", "Eva", "Karin", "Ingrid", "Sofia"),
        ("Andersson", "Johansson", "Karlsson", "Nilsson", "Eriksson", "Larsson", "Olsson",
         "Persson", "Svensson", "Gustafsson", "Hansen", "Johansen", "Olsen", "Larsen", "Pedersen",
         "Nielsen", "Jensen"),
    ),
    "nl": (
        ("Jan", "Pieter", "Kees", "Willem", "Hendrik", "Bram", "Sander", "Ruud", "Dirk", "Joost"),
        ("Anke", "Marieke", "Sanne", "Ingrid"),
        ("de Jong", "Jansen", "de Vries", "van den Berg", "van Dijk", "Bakker", "Visser", "Smit",
         "Meijer", "de Boer", "Mulder", "van der Meer"),
    ),
    "fr": (
        ("Jean", "Pierre", "Michel", "Philippe", "Alain", "Nicolas", "Laurent", "Olivier", "Didier"),
        ("Isabelle", "Nathalie", "Sophie", "Catherine"),
        ("Martin", "Bernard", "Dubois", "Thomas", "Robert", "Richard", "Petit", "Durand", "Leroy",
         "Moreau", "Lefebvre", "Girard"),
    ),
    "it": (
        ("Marco", "Giuseppe", "Luca", "Andrea", "Francesco", "Paolo", "Roberto"),
        ("Giulia", "Francesca", "Chiara"),
        ("Rossi", "Russo", "Ferrari", "Esposito", "Bianchi", "Romano", "Colombo", "Ricci"),
    ),
    "es": (
        ("Juan", "Carlos", "Javier", "Antonio", "Manuel", "Francisco"),
        ("Carmen", "Lucia", "Elena"),
        ("García", "Fernández", "González", "Rodríguez", "López", "Martínez", "Sánchez", "Pérez"),
    ),
    "jp": (
        ("Hiroshi", "Takashi", "Kenji", "Satoshi", "Makoto", "Daisuke", "Kazuo"),
        ("Yuki", "Keiko", "Naoko", "Akiko"),
        ("Sato", "Suzuki", "Takahashi", "Tanaka", "Watanabe", "Ito", "Yamamoto", "Nakamura"),
    ),
    "kr": (
        ("Min-jun", "Ji-hoon", "Sung-ho", "Dong-hyun", "Jae-won"),
        ("Seo-yeon", "Ji-woo", "Eun-ji"),
        ("Kim", "Lee", "Park", "Choi", "Jung", "Kang", "Cho"),
    ),
    "cn": (
        ("Wei", "Ming", "Jun", "Hao", "Kelvin", "Jason", "Eric", "Kenneth", "Wai Keung"),
        ("Hui", "Mei Ling", "Shu Fen", "Michelle"),
        ("Chen", "Wang", "Lin", "Li", "Chan", "Wong", "Lee", "Tan", "Lim", "Ng", "Cheung", "Huang"),
    ),
    "ar": (
        ("Mohammed", "Abdullah", "Ahmed", "Khalid", "Faisal", "Omar", "Saud", "Yousef", "Hamad"),
        ("Fatima", "Noura", "Aisha"),
        ("Al-Harbi", "Al-Qahtani", "Al-Ghamdi", "Al-Mutairi", "Al-Shehri", "Al-Otaibi", "Khan",
         "Al-Mansoori", "Al-Thani", "Al-Kuwari"),
    ),
}

COMPANY_WORDS_A = (
    "Bright", "North", "Blue", "Apex", "Harbor", "Summit", "Pixel", "Silver", "Green", "Clear",
    "Bold", "Swift", "Prime", "Urban", "Coastal", "Evergreen", "Redwood", "Nimbus", "Vertex", "Atlas",
)
COMPANY_WORDS_B = (
    "wave", "peak", "field", "stone", "line", "works", "bridge", "path", "point", "craft", "mark",
    "light", "gate", "view", "logic", "spring",
)
COMPANY_KIND = ("Media", "Digital", "Studio", "Consulting", "Marketing", "Labs", "Solutions",
                "Trading", "Design", "Support")
COMPANY_SUFFIX = {"US": "LLC", "CA": "Inc.", "GB": "Ltd", "AU": "Pty Ltd", "NZ": "Ltd",
                  "DE": "GmbH", "NL": "B.V.", "SE": "AB", "SG": "Pte. Ltd.", "JP": "K.K."}
CHARITY_NAMES = (
    "Hope for Children Foundation Inc.", "Bright Futures Child Sponsorship", "Little Lights Mission",
    "Kalinga Children's Fund", "Pag-asa Scholarship Foundation", "Sunrise Kids Philippines Inc.",
    "Bahay Kalinga Foundation", "Open Hands Child Care Mission", "Batang Masaya Educational Trust",
    "Tahanan ng Pag-asa Foundation", "Seeds of Learning PH", "Angat Bata Sponsorship Program",
    "Gabay Children's Mission", "Bayanihan Kids Fund", "Liwanag Learning Center Inc.",
)

# --------------------------------------------------------------------------------------------
# Phones
# --------------------------------------------------------------------------------------------
PH_MOBILE_PREFIXES = (
    "905", "906", "915", "916", "917", "926", "927", "935", "936", "945", "955", "956", "965", "966",
    "975", "977", "995", "997", "908", "918", "919", "920", "921", "928", "929", "939", "947", "949",
    "951", "961", "998", "999",
)
DIAL_CODE: dict[str, str] = {
    "US": "1", "CA": "1", "GB": "44", "IE": "353", "AU": "61", "NZ": "64", "DE": "49", "AT": "43",
    "CH": "41", "NL": "31", "FR": "33", "IT": "39", "ES": "34", "SE": "46", "NO": "47", "DK": "45",
    "JP": "81", "KR": "82", "TW": "886", "HK": "852", "SG": "65", "MY": "60", "SA": "966",
    "AE": "971", "QA": "974", "KW": "965", "PH": "63", "TH": "66", "VN": "84", "ID": "62",
}

# --------------------------------------------------------------------------------------------
# References. One shared vocabulary: every word a customer uses is also used by legitimate senders.
# --------------------------------------------------------------------------------------------
REFS_FAMILY = (
    "allowance", "tuition", "pang-gatas", "school fees", "gift", "for mama", "padala",
    "family support", "bills", "pambayad kuryente", "food", "medicine", "birthday", "help",
    "for the kids", "baon", "school", "load", "rent", "Merry Christmas",
)
REFS_PARTNER = ("love", "for you", "gift", "food", "load", "rent", "help", "allowance",
                "birthday", "bills", "medicine", "school", "date night", "miss you")
REFS_CUSTOMER = ("gift", "school", "help", "food", "load", "for you", "allowance", "bills",
                 "medicine", "birthday")
REFS_DONOR = ("sponsorship", "monthly donation", "donation", "child sponsorship", "gift",
              "school", "christmas gift", "help")
REFS_SHOP = ("order", "payment", "item", "shipping", "gift", "dried mangoes", "barong",
             "handicraft", "load", "food")
REFS_FRIEND = ("gift", "thanks", "dinner", "help", "birthday", "hotel", "trip", "food", "load")
REFS_DOMESTIC = ("padala", "allowance", "bayad", "utang", "load", "food", "school", "gift")
REFS_FREELANCE_TEXT = ("payment for services", "web design", "VA services", "weekly hours",
                       "content writing", "monthly retainer", "video editing", "bookkeeping",
                       "graphic design", "social media mgmt")
