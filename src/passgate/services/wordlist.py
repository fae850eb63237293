"""Which words of the EFF long list may appear in a device-link passphrase: people read them aloud, type
them on a phone and send them to someone they invited, so unpleasant words ("stinky") and odd ones
("flakily", "dirtiness") are left out. What is left (about 6,750 words) still gives each word ~12.7 bits."""

from __future__ import annotations

# Word beginnings that are unpleasant (bodily, violent, insulting or gloomy) in an invitation.
UNPLEASANT = (
    "agon", "anguish", "bully", "casket", "choke", "chubby", "clammy", "cough", "cringe", "crud", "curse",
    "decay", "dingy", "dirt", "ditzy", "dread", "drool", "drown", "fester", "filth", "germ", "goof",
    "graveyard", "greas", "greed", "grime", "grope", "gross", "jail", "lust", "maggot", "moist", "mortuar",
    "mushy", "numb", "parasit", "poison", "prison", "pushy", "pushiness", "rabid", "ranc", "repuls",
    "rotten", "scab", "scruffy", "slob", "sloppy", "sludge", "smell", "sneez", "squish", "stale", "stink",
    "strangle", "sweat", "untidy", "unwashed", "vomit", "widow", "wince", "wound",
)  # fmt: skip
# Word endings that make odd passphrase words: adverbs ("flakily") and abstract nouns ("dirtiness").
ODD_ENDINGS = ("ly", "ness")
MIN_LENGTH, MAX_LENGTH = 3, 9


def pleasant(word: str) -> bool:
    """True for a plain, everyday word that is fine to read aloud to someone."""
    return (
        word.isascii()
        and word.isalpha()
        and MIN_LENGTH <= len(word) <= MAX_LENGTH
        and not word.endswith(ODD_ENDINGS)
        and not word.startswith(UNPLEASANT)
    )
