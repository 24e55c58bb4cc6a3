"""Name pools for the member generator, grouped by the naming tradition they come from.

The mix matters more than the size: merge fields that carry ``í``, ``ł``, Cyrillic, Han or an emoji turn a
GSM-7 text into UCS-2 and change its segment count, which is what the pacing and cost code must get right.
Weights are shares of members, roughly those of a North American association with international members.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class NamePool:
    """Given names and family names of one tradition; ``weight`` is its share of generated members."""

    key: str
    weight: float
    first: tuple[str, ...]
    last: tuple[str, ...]


POOLS: tuple[NamePool, ...] = (
    NamePool(
        "anglo",
        52.0,
        (
            "James", "Mary", "Robert", "Patricia", "John", "Jennifer", "Michael", "Linda", "David", "Elizabeth",
            "William", "Barbara", "Richard", "Susan", "Joseph", "Jessica", "Thomas", "Sarah", "Christopher",
            "Karen", "Daniel", "Lisa", "Matthew", "Nancy", "Anthony", "Betty", "Mark", "Sandra", "Donald",
            "Margaret", "Steven", "Ashley", "Andrew", "Kimberly", "Joshua", "Emily", "Kenneth", "Donna",
            "Kevin", "Michelle", "Brian", "Carol", "Timothy", "Amanda", "Ronald", "Melissa", "Jason",
            "Deborah", "Jeffrey", "Stephanie", "Ryan", "Rebecca", "Jacob", "Laura", "Gary", "Helen",
            "Nicholas", "Sharon", "Eric", "Cynthia", "Stephen", "Kathleen", "Jonathan", "Amy", "Larry",
            "Shirley", "Scott", "Angela", "Brandon", "Anna", "Zoë", "Chloë", "Renée", "Noël", "Jo-Ann",
            "Mary-Kate", "D'Arcy", "Siobhán", "Seán", "Niamh", "Aoife", "Ciarán", "Pádraig",
        ),
        (
            "Smith", "Johnson", "Williams", "Brown", "Jones", "Miller", "Davis", "Wilson", "Anderson",
            "Taylor", "Thomas", "Moore", "Jackson", "Martin", "Lee", "Thompson", "White", "Harris", "Clark",
            "Lewis", "Robinson", "Walker", "Young", "Allen", "King", "Wright", "Scott", "Hill", "Green",
            "Adams", "Baker", "Nelson", "Carter", "Mitchell", "Roberts", "Turner", "Phillips", "Campbell",
            "Parker", "Evans", "Edwards", "Collins", "Stewart", "Morris", "Murphy", "Cook", "Rogers",
            "O'Brien", "O'Neill", "McDonald", "MacLeod", "Fitzgerald", "Ó Súilleabháin", "Smith-Jones",
            "Van Buren", "St. John", "Worthington-Smythe", "de Vere",
        ),
    ),
    NamePool(
        "hispanic",
        12.0,
        (
            "José", "María", "Juan", "Guadalupe", "Luis", "Sofía", "Carlos", "Lucía", "Jesús", "Martín",
            "Ramón", "Inés", "Andrés", "Ángel", "Raúl", "Adrián", "Begoña", "Iñaki", "Óscar", "Verónica",
            "Camila", "Valentina", "Diego", "Alejandro", "Ximena", "Joaquín", "Nicolás", "Rocío",
        ),
        (
            "García", "Rodríguez", "Martínez", "Hernández", "López", "González", "Pérez", "Sánchez",
            "Ramírez", "Torres", "Flores", "Rivera", "Gómez", "Díaz", "Cruz", "Morales", "Ortiz", "Gutiérrez",
            "Chávez", "Ramos", "Ruiz", "Álvarez", "Jiménez", "Muñoz", "Núñez", "Ibáñez", "de la Cruz",
            "García Márquez", "Peña",
        ),
    ),
    NamePool(
        "french",
        6.0,
        (
            "Jean", "Marie", "François", "Hélène", "Stéphane", "Amélie", "Jérôme", "Geneviève", "Léa",
            "Benoît", "Josée", "Cécile", "Gaëtan", "Maëlle", "Éric", "Élodie", "Loïc", "Anaïs", "Jean-Luc",
        ),
        (
            "Tremblay", "Gagnon", "Roy", "Côté", "Bouchard", "Gauthier", "Morin", "Lavoie", "Fortin",
            "Gagné", "Pelletier", "Bélanger", "Lévesque", "Bergeron", "Leblanc", "Ouellet", "Bérubé",
            "Lefèvre", "Dubé", "Chrétien", "Desjardins", "Thériault",
        ),
    ),
    NamePool(
        "german_nordic",
        4.0,
        (
            "Jürgen", "Björn", "Søren", "Åsa", "Jörg", "Ulrike", "Günter", "Käthe", "Mikael", "Sigrún",
            "Þór", "Ingrid", "Lars", "Maren", "Øystein",
        ),
        (
            "Müller", "Schröder", "Weiß", "Groß", "Jäger", "Åström", "Ødegaard", "Bjørnstad", "Jónsdóttir",
            "Hoffmann", "Schäfer", "Köhler", "Lindqvist", "Sæther",
        ),
    ),
    NamePool(
        "polish_czech",
        2.0,
        ("Łukasz", "Małgorzata", "Wojciech", "Agnieszka", "Grzegorz", "Zdeněk", "Jiří", "Kateřina"),
        ("Kowalski", "Wiśniewski", "Wójcik", "Kamiński", "Lewandowska", "Dvořák", "Černý", "Nováková"),
    ),
    NamePool(
        "vietnamese",
        3.0,
        ("Nguyễn", "Thảo", "Minh", "Phương", "Huỳnh", "Dũng", "Quỳnh", "Tuấn", "Hương", "Bảo"),
        ("Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Vũ", "Đặng", "Bùi", "Đỗ", "Hồ"),
    ),
    NamePool(
        "chinese_latin",
        3.0,
        ("Wei", "Li", "Fang", "Jun", "Xiaoming", "Mei", "Jing", "Hao", "Yan", "Ling", "Chen"),
        ("Wang", "Li", "Zhang", "Liu", "Chen", "Yang", "Huang", "Zhao", "Wu", "Zhou", "Lü", "Xu"),
    ),
    NamePool(
        "chinese_han",
        1.5,
        ("伟", "芳", "娜", "秀英", "敏", "静", "丽", "强", "磊", "洋"),
        ("王", "李", "张", "刘", "陈", "杨", "黄", "赵", "吴", "周"),
    ),
    NamePool(
        "japanese_korean",
        1.5,
        ("Haruto", "Yūki", "Sōta", "Ōta", "さくら", "陽翔", "민준", "서연", "Ji-woo", "Seo-yeon"),
        ("Satō", "Suzuki", "Takahashi", "Itō", "佐藤", "田中", "Kim", "Park", "김", "이", "박"),
    ),
    NamePool(
        "south_asian",
        4.0,
        ("Aarav", "Priya", "Rohan", "Ananya", "Vikram", "Lakshmi", "Arjun", "Divya", "Sanjay", "प्रिया",
         "Neha", "Rahul"),
        ("Patel", "Sharma", "Singh", "Kumar", "Gupta", "Reddy", "Iyer", "Nair", "Chatterjee", "शर्मा"),
    ),
    NamePool(
        "arabic",
        2.5,
        ("Mohammed", "Fatima", "Ahmed", "Aisha", "Omar", "Layla", "Youssef", "Noor", "محمد", "فاطمة"),
        ("Al-Sayed", "Haddad", "Khalil", "Mansour", "Nasser", "El-Amin", "Saleh", "الحسن", "حداد"),
    ),
    NamePool(
        "slavic_greek",
        2.5,
        ("Дмитрий", "Анна", "Ольга", "Сергей", "Dmitri", "Natasha", "Γιώργος", "Ελένη", "Nikos", "Μαρία"),
        ("Иванов", "Смирнова", "Petrov", "Kuznetsova", "Παπαδόπουλος", "Georgiou", "Κωνσταντίνου",
         "Popescu", "Ștefănescu"),
    ),
    NamePool(
        "pacific",
        0.5,
        ("Kaʻiulani", "Keoni", "Mālie", "Leilani", "Ngaio", "Tāne"),
        ("Kahananui", "Kealoha", "Nāone", "Te Whata", "Pōmare"),
    ),
)

PREFIXES: tuple[str, ...] = ("", "", "", "Ms.", "Mr.", "Mrs.", "Dr.", "Prof.", "Mx.", "Rev.")

# Nicknames carrying an emoji: a small share of members, so a few merged texts go UCS-2 and 4-unit clusters
# show up in the segment counts.
EMOJI_NICKNAMES: tuple[str, ...] = (
    "Sunny ☀️", "Mo 🎸", "🌻 Daisy", "Bee 🐝", "Rocky 🏔️", "Kiki 🌸", "Doc 🩺", "Ace ♠️", "Teddy 🧸",
    "Ziggy ⚡", "Pops 👴🏽", "Jojo 🇵🇭",
)

# Plain nicknames by given name; others use the given name itself as the informal name.
NICKNAMES: dict[str, str] = {
    "Robert": "Bob", "William": "Bill", "Richard": "Dick", "Elizabeth": "Liz", "Margaret": "Peggy",
    "James": "Jim", "Joseph": "Joe", "Michael": "Mike", "Katherine": "Kate", "Christopher": "Chris",
    "Jennifer": "Jen", "Patricia": "Pat", "Daniel": "Dan", "Anthony": "Tony", "Kimberly": "Kim",
    "José": "Pepe", "Guadalupe": "Lupita", "Francisco": "Paco", "Alejandro": "Álex", "Dmitri": "Dima",
    "Дмитрий": "Дима", "Jean-Luc": "J-L", "Xiaoming": "Ming", "Mohammed": "Mo",
}
