"""The words the preview engine understands, grouped by what they control.

Each table maps a canonical choice to the phrases that name it. Phrases are
matched on word boundaries in lower case; Chinese phrases match anywhere.
Order matters where phrases overlap: longer, more specific phrases come first.
"""

from __future__ import annotations

PALETTE_WORDS: dict[str, tuple[str, ...]] = {
    "golden_hour": ("golden hour", "magic hour", "golden light", "warm light", "黄昏"),
    "blue_hour": ("blue hour", "twilight", "gloaming"),
    "sunset": ("sunset", "dusk", "evening", "setting sun", "日落", "夕阳"),
    "dawn": ("sunrise", "dawn", "morning", "daybreak", "日出", "清晨"),
    "neon": ("neon", "cyberpunk", "synthwave", "vaporwave", "霓虹"),
    "storm": ("storm", "stormy", "thunder", "thunderstorm", "lightning", "暴风雨"),
    "night": ("night", "midnight", "moonlight", "moonlit", "moon", "starry", "stars",
              "nighttime", "夜", "晚上", "月"),
    "overcast": ("overcast", "cloudy", "grey sky", "gray sky", "gloomy", "dreary", "阴天"),
    "day": ("daylight", "daytime", "midday", "noon", "sunny", "bright day", "clear sky",
            "白天", "阳光"),
}

ENVIRONMENT_WORDS: dict[str, tuple[str, ...]] = {
    "valley": ("valley", "canyon", "gorge", "ravine", "山谷", "峡谷"),
    "mountains": ("mountain", "mountains", "peak", "peaks", "alps", "cliff", "cliffs", "hills",
                  "hillside", "ridge", "summit", "volcano", "山"),
    "sea": ("sea", "ocean", "beach", "coast", "coastline", "shore", "waves", "lake", "harbor",
            "harbour", "bay", "island", "river", "pier", "lighthouse", "lighthouses", "海", "湖",
            "河", "灯塔"),
    "forest": ("forest", "woods", "woodland", "trees", "jungle", "pines", "pine", "grove",
               "森林", "树林"),
    "city": ("city", "street", "streets", "downtown", "skyline", "skyscraper", "skyscrapers",
             "alley", "rooftop", "rooftops", "town", "urban", "buildings", "metropolis",
             "城市", "街"),
    "temple": ("temple", "shrine", "pagoda", "cathedral", "palace", "pillars", "columns",
               "colonnade", "parthenon", "寺", "庙", "宫殿"),
    "ruins": ("ruins", "ruined", "ancient", "遗迹", "废墟"),
    "desert": ("desert", "dunes", "dune", "sand", "sahara", "沙漠"),
    "field": ("field", "fields", "meadow", "grassland", "prairie", "plains", "farm", "garden",
              "countryside", "草原", "田野"),
}

ATMOSPHERE_WORDS: dict[str, tuple[str, ...]] = {
    "shafts": ("light shafts", "light rays", "god rays", "sunbeams", "sunbeam", "sun rays",
               "volumetric", "crepuscular", "beams of light", "shafts", "光束"),
    "fog": ("fog", "foggy", "mist", "misty", "haze", "hazy", "smoke", "雾"),
    "rain": ("rain", "rainy", "raining", "drizzle", "downpour", "rainfall", "雨"),
    "snow": ("snow", "snowy", "snowing", "snowfall", "blizzard", "winter", "雪"),
    "dust": ("dust", "dusty", "motes", "embers", "sparks", "ash", "pollen", "灰尘"),
    "fireflies": ("fireflies", "firefly", "glowing orbs", "sparkles", "magical", "萤火虫"),
}

SUBJECT_WORDS: dict[str, tuple[str, ...]] = {
    "figure": ("man", "woman", "person", "girl", "boy", "child", "traveler", "traveller",
               "warrior", "knight", "monk", "samurai", "figure", "silhouette", "hiker",
               "explorer", "soldier", "wanderer", "dancer", "character", "she", "he",
               "人", "女人", "男人", "女孩", "男孩"),
    "birds": ("bird", "birds", "seagull", "seagulls", "gulls", "crows", "eagle", "flock",
              "鸟"),
    "boat": ("boat", "ship", "sailboat", "sailing", "yacht", "canoe", "船"),
    # A lighthouse also names the sea (ENVIRONMENT_WORDS): it stands on a headland.
    "lighthouse": ("lighthouse", "lighthouses", "灯塔"),
}

CAMERA_WORDS: dict[str, tuple[str, ...]] = {
    "pull_back": ("pull back", "pull-back", "pulls back", "pulling back", "dolly out",
                  "dolly-out", "zoom out", "zooms out", "pull out", "pulls out", "reveal",
                  "reveals", "拉远"),
    "push_in": ("push in", "push-in", "pushes in", "pushing in", "dolly in", "dolly-in",
                "zoom in", "zooms in", "moves closer", "close in", "推近"),
    "orbit": ("orbit", "orbits", "orbiting", "arc shot", "circles around", "circling",
              "360", "环绕"),
    "crane": ("crane", "jib", "boom up", "rising", "rises", "ascends", "ascending",
              "crane shot", "升"),
    "handheld": ("handheld", "hand-held", "shaky", "documentary style", "手持"),
    "static": ("static", "locked-off", "locked off", "still camera", "tripod",
               "fixed camera", "固定镜头"),
    "truck": ("tracking", "tracks", "truck", "trucking", "side-scroll", "follows",
              "following", "跟拍"),
    "tilt": ("tilt", "tilts", "tilting", "俯仰"),
    "pan": ("pan", "pans", "panning", "sweeps", "sweep", "摇镜"),
}

DIRECTION_WORDS: dict[int, tuple[str, ...]] = {
    -1: ("left", "down", "downward", "counterclockwise", "anticlockwise", "descending"),
    1: ("right", "up", "upward", "clockwise"),
}

SPEED_WORDS: dict[float, tuple[str, ...]] = {
    0.65: ("slow", "slowly", "gentle", "gently", "subtle", "calm"),
    1.6: ("fast", "quick", "quickly", "rapid", "dramatic", "swift", "whip"),
}

AMBIENCE_WORDS: dict[str, tuple[str, ...]] = {
    "fire": ("fire", "campfire", "fireplace", "torch", "torches", "flames", "flame",
             "candle", "candles", "bonfire", "embers", "火"),
    "crowd": ("crowd", "crowds", "market", "people", "festival", "cheering", "party",
              "audience", "busy", "bustling", "人群"),
    "water": ("waterfall", "stream", "fountain", "splash"),
}

# Negative-prompt words that remove a whole family at once.
NEGATIVE_GROUPS: dict[str, tuple[str, ...]] = {
    "particles": ("rain", "snow", "dust", "fireflies"),
    "particle": ("rain", "snow", "dust", "fireflies"),
    "weather": ("rain", "snow", "fog"),
    "people": ("figure",),
    "humans": ("figure",),
    "characters": ("figure",),
    "animals": ("birds",),
    "camera shake": ("handheld",),
    "camera movement": ("push_in", "pull_back", "pan", "tilt", "orbit", "crane", "truck",
                        "handheld"),
}
