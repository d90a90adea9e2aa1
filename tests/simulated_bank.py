"""Hand-written phrasing for the session simulator: questions, how people re-ask them, follow-ups that
look similar but ask something new (hard negatives), and reply phrases for pushback and thanks.

Written as users write, not to fit the detectors: some re-asks use synonyms the lexical detector does
not know and some rejections use words it does not look for, so measured recall is not 100% by design.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["PUSHBACK", "PUSHBACK_NEGATIVE", "THANKS", "THANKS_NEGATIVE", "TOPICS", "Topic"]


@dataclass(frozen=True, slots=True)
class Topic:
    question: str
    rephrases: tuple[str, ...]  # the same question asked again (labelled repeat_ask)
    followups: tuple[str, ...]  # similar but new questions (hard negatives for repeat_ask)
    answer: str


def _t(question: str, rephrases: list[str], followups: list[str], answer: str) -> Topic:
    return Topic(question, tuple(rephrases), tuple(followups), answer)


TOPICS: tuple[Topic, ...] = (
    _t(
        "How do I reverse a string in Python?",
        [
            "how can I reverse a python string",
            "Reversing a string in Python - how?",
            "what's the way to reverse a string in python??",
        ],
        [
            "How do I reverse a string in Python without slicing?",
            "And how do I reverse a list?",
            "What about in JavaScript?",
        ],
        "Use slicing with a negative step: reversed_text = text[::-1]. For example 'abc'[::-1] returns 'cba'. "
        "It works for any sequence and creates a new string.",
    ),
    _t(
        "What is the capital of Australia?",
        [
            "Australia's capital city?",
            "which city is the capital of australia",
            "tell me the capital of Australia please",
        ],
        [
            "And the capital of New Zealand?",
            "What is the population of Australia?",
            "What is the capital of Australia and when was it founded?",
        ],
        "The capital of Australia is Canberra. It was purpose-built as a compromise between Sydney and "
        "Melbourne and became the seat of government in 1927.",
    ),
    _t(
        "How long should I boil an egg for a soft yolk?",
        [
            "how long to boil an egg so the yolk stays soft",
            "Soft boiled egg, how many minutes of boiling?",
            "boiling time for an egg with a runny yolk?",
        ],
        [
            "How long should I boil an egg for a hard yolk?",
            "What about a duck egg?",
            "Can I boil an egg in the microwave?",
        ],
        "Lower the egg into boiling water and cook it for 6 to 7 minutes, then move it to ice water for "
        "one minute. That gives a set white and a soft, jammy yolk.",
    ),
    _t(
        "How do I undo the last git commit?",
        [
            "how can i undo my last commit in git",
            "undo last commit git?",
            "What's the command to undo the most recent git commit",
        ],
        [
            "How do I undo the last git commit but keep the changes?",
            "And how do I undo a git push?",
            "How do I undo the last 3 git commits?",
        ],
        "Run git reset --soft HEAD~1 to undo the commit and keep your changes staged, or git reset --hard "
        "HEAD~1 to throw the changes away. Avoid --hard if you have uncommitted work.",
    ),
    _t(
        "What's a good stretch for lower back pain?",
        [
            "which stretches help with lower back pain",
            "good stretches for pain in my lower back?",
            "any stretch you'd recommend for lower back pain",
        ],
        [
            "What's a good stretch for neck pain?",
            "How often should I do it?",
            "Is yoga better than stretching for lower back pain?",
        ],
        "Try the knee-to-chest stretch: lie on your back, pull one knee toward your chest and hold it for "
        "30 seconds, then switch legs. The cat-cow stretch is also gentle on the lower back.",
    ),
    _t(
        "How do I convert a list of strings to integers in Python?",
        [
            "convert list of strings into ints python",
            "how can I turn a list of strings into integers in python",
            "python: list of strings to integers?",
        ],
        [
            "How do I convert a list of strings to floats in Python?",
            "What if some strings are empty?",
            "How do I convert a list of integers to strings in Python?",
        ],
        "Use a list comprehension: numbers = [int(s) for s in strings]. Alternatively list(map(int, "
        "strings)) does the same. Both raise ValueError if a string is not a valid integer.",
    ),
    _t(
        "When did the Berlin Wall fall?",
        ["what year did the berlin wall fall", "when was the Berlin Wall torn down?", "The Berlin Wall fell when?"],
        ["When was the Berlin Wall built?", "Why did the Berlin Wall fall?", "And when did Germany reunify?"],
        "The Berlin Wall fell on 9 November 1989, when East German authorities opened the border "
        "crossings. Demolition continued through 1990.",
    ),
    _t(
        "How much water should I drink per day?",
        [
            "how much water is it recommended to drink daily",
            "daily water intake, how much should I drink?",
            "how many liters of water per day should I drink",
        ],
        [
            "How much water should a dog drink per day?",
            "Does coffee count toward that?",
            "How much water should I drink per day when running a marathon?",
        ],
        "A common guideline is about 2 to 3 liters a day for adults, including water from food. Needs rise "
        "with heat, exercise and body size, and thirst is a reasonable guide for most people.",
    ),
    _t(
        "How do I center a div in CSS?",
        ["how can I center a div with css", "css center div??", "What's the best way to center a div using CSS"],
        [
            "How do I center a div vertically only?",
            "And how do I center text inside it?",
            "How do I center a div in Tailwind?",
        ],
        "Make the parent a flex container: display: flex; justify-content: center; align-items: center. "
        "With CSS grid, place-items: center on the parent does the same.",
    ),
    _t(
        "What's the difference between a Roth IRA and a traditional IRA?",
        [
            "Roth IRA vs traditional IRA - what's the difference?",
            "difference between roth and traditional ira",
            "how does a Roth IRA differ from a traditional IRA",
        ],
        [
            "What's the difference between a Roth IRA and a 401k?",
            "Which one is better for someone in their 20s?",
            "What are the income limits for a Roth IRA in 2024?",
        ],
        "With a traditional IRA you contribute pre-tax money and pay tax on withdrawals; with a Roth IRA "
        "you contribute after-tax money and qualified withdrawals are tax free.",
    ),
    _t(
        "How do I remove duplicates from a list in Python?",
        [
            "how to delete duplicate items from a python list",
            "remove duplicates python list",
            "Python: how do I get rid of duplicates in a list?",
        ],
        [
            "How do I remove duplicates from a list in Python while keeping the order?",
            "How do I find the duplicates instead of removing them?",
            "How do I remove duplicates from a pandas DataFrame?",
        ],
        "Convert it to a set and back: unique = list(set(items)). If order matters, use "
        "list(dict.fromkeys(items)), which keeps the first occurrence of each item.",
    ),
    _t(
        "What temperature should I bake chicken breasts at?",
        [
            "what oven temp for baking chicken breast",
            "chicken breast baking temperature?",
            "At what temperature do I bake chicken breasts",
        ],
        [
            "What temperature should I bake chicken thighs at?",
            "How long should they stay in?",
            "What internal temperature means chicken is done?",
        ],
        "Bake boneless chicken breasts at 220 C (425 F) for about 18 to 22 minutes, until the thickest "
        "part reaches 74 C (165 F). Let them rest five minutes before slicing.",
    ),
    _t(
        "How do I write a for loop in Bash?",
        [
            "bash for loop syntax?",
            "how to write a for loop in a bash script",
            "What's the syntax of a for loop in bash",
        ],
        [
            "How do I write a while loop in Bash?",
            "How do I loop over files in a directory?",
            "How do I write a for loop in Bash that counts from 1 to 10?",
        ],
        'Use for item in a b c; do echo "$item"; done. To loop over numbers write for i in {1..5}; do '
        'echo "$i"; done, and over files use for f in *.txt; do ...; done.',
    ),
    _t(
        "Why is the sky blue?",
        ["why is the sky blue??", "what makes the sky blue", "can you explain why the sky is blue"],
        ["Why is the sky red at sunset?", "Why is the ocean blue?", "Is the sky blue on Mars too?"],
        "Sunlight is scattered by the molecules in the air, and shorter blue wavelengths scatter much more "
        "than red ones (Rayleigh scattering), so blue light reaches your eyes from every direction.",
    ),
    _t(
        "How do I read a CSV file with pandas?",
        [
            "how can i load a csv file in pandas",
            "pandas read csv file how",
            "What's the pandas function to read a CSV file?",
        ],
        [
            "How do I write a CSV file with pandas?",
            "How do I read only the first 100 rows?",
            "How do I read an Excel file with pandas?",
        ],
        "Call pandas.read_csv('data.csv'), which returns a DataFrame. Pass sep=';' for semicolon files and "
        "parse_dates=['date'] to parse date columns.",
    ),
    _t(
        "What are the symptoms of vitamin D deficiency?",
        [
            "vitamin D deficiency symptoms?",
            "what symptoms does a vitamin d deficiency cause",
            "signs of vitamin D deficiency",
        ],
        ["What are the symptoms of vitamin B12 deficiency?", "How is it treated?", "What foods are high in vitamin D?"],
        "Common symptoms are fatigue, bone pain, muscle weakness or cramps, and low mood. Severe deficiency "
        "can soften bones. A blood test for 25-hydroxyvitamin D confirms it.",
    ),
    _t(
        "How do I make a cold brew coffee?",
        ["how to make cold brew coffee at home", "cold brew coffee recipe?", "how is cold brew coffee made"],
        [
            "How do I make iced coffee quickly?",
            "How long does cold brew keep in the fridge?",
            "How do I make cold brew coffee without a filter?",
        ],
        "Mix coarsely ground coffee with cold water at about 1 to 8 by weight, steep it in the fridge for "
        "12 to 18 hours, then strain it through a paper filter or fine cloth.",
    ),
    _t(
        "How do I check which process is using a port on Linux?",
        [
            "linux: which process is using a port?",
            "how can I find what process uses a port in linux",
            "find the process listening on a port linux",
        ],
        [
            "How do I check which process is using a port on Windows?",
            "How do I kill that process?",
            "How do I check which ports are open on Linux?",
        ],
        "Run sudo ss -ltnp | grep :8080 or sudo lsof -i :8080. Both show the process id and name of the "
        "program listening on that port.",
    ),
    _t(
        "What's the best way to learn Spanish quickly?",
        ["fastest way to learn spanish?", "how can I learn Spanish fast", "what is the quickest way to learn spanish"],
        [
            "What's the best way to learn Japanese quickly?",
            "Which apps do you recommend?",
            "How long does it take to learn Spanish?",
        ],
        "Combine daily spaced-repetition vocabulary practice with speaking from the first week, for "
        "example with a tutor or language exchange, and listen to Spanish podcasts at your level.",
    ),
    _t(
        "How do I merge two dictionaries in Python?",
        [
            "how to combine two dicts in python",
            "python merge 2 dictionaries",
            "What's the way to merge two dictionaries in python",
        ],
        [
            "How do I merge two dictionaries in Python 3.8?",
            "What happens if both have the same key?",
            "How do I merge two lists in Python?",
        ],
        "In Python 3.9+ use merged = a | b. In older versions use merged = {**a, **b}. Keys from the "
        "second dictionary win when both contain the same key.",
    ),
    _t(
        "How many calories are in a banana?",
        ["calories in a banana?", "how many calories does a banana have", "a banana has how many calories"],
        [
            "How many calories are in an apple?",
            "How much sugar is in a banana?",
            "How many calories are in a banana smoothie?",
        ],
        "A medium banana (about 118 g) has roughly 105 calories, mostly from carbohydrates, plus about "
        "3 grams of fiber and 420 mg of potassium.",
    ),
    _t(
        "How do I fix 'ModuleNotFoundError: No module named requests'?",
        [
            "ModuleNotFoundError no module named requests - how do I fix it",
            "how to solve No module named requests error",
            "getting ModuleNotFoundError: No module named 'requests', how to fix?",
        ],
        [
            "How do I fix 'ModuleNotFoundError: No module named numpy'?",
            "Why does it work in the terminal but not in VS Code?",
            "How do I install requests without pip?",
        ],
        "Install the package into the interpreter you run: python -m pip install requests. If you use a "
        "virtual environment, activate it first so pip installs into it.",
    ),
    _t(
        "What is a good name for a bakery?",
        ["can you suggest a good bakery name", "name ideas for a bakery?", "give me a good name for a bakery"],
        [
            "What is a good name for a coffee shop?",
            "Can you make them sound French?",
            "What is a good slogan for a bakery?",
        ],
        "Some ideas: Rise and Shine Bakery, The Flour Pot, Crumb and Crust, Golden Loaf, Sweet Proof and "
        "Daily Bread Co. Pick one that is easy to say and free as a domain.",
    ),
    _t(
        "How do I calculate compound interest?",
        [
            "what's the formula for compound interest",
            "how is compound interest calculated",
            "compound interest calculation?",
        ],
        [
            "How do I calculate simple interest?",
            "What would 1000 dollars be after 10 years at 5%?",
            "How do I calculate compound interest in Excel?",
        ],
        "Use A = P(1 + r/n)^(nt), where P is the principal, r the annual rate, n the number of "
        "compounding periods per year and t the number of years. Interest is A - P.",
    ),
    _t(
        "Who wrote Pride and Prejudice?",
        [
            "who is the author of Pride and Prejudice",
            "pride and prejudice was written by who?",
            "Who's the writer of Pride and Prejudice?",
        ],
        [
            "Who wrote Sense and Sensibility?",
            "When was Pride and Prejudice published?",
            "What other books did she write?",
        ],
        "Pride and Prejudice was written by Jane Austen and first published in 1813. It follows "
        "Elizabeth Bennet and her changing opinion of Mr Darcy.",
    ),
    _t(
        "How do I sort a dictionary by value in Python?",
        [
            "python sort dict by value",
            "how can I sort a dictionary by its values in python",
            "sorting a python dictionary by value?",
        ],
        [
            "How do I sort a dictionary by value in descending order?",
            "How do I sort a dictionary by key?",
            "How do I sort a list of dictionaries by a value?",
        ],
        "Use sorted with a key: dict(sorted(d.items(), key=lambda kv: kv[1])). The result is a new "
        "dictionary ordered by value, because dictionaries keep insertion order.",
    ),
    _t(
        "What should I pack for a week in Iceland in October?",
        [
            "packing list for iceland in october, one week",
            "what to pack for a week-long trip to Iceland in October",
            "Iceland in October for a week - what should I pack?",
        ],
        [
            "What should I pack for a week in Iceland in July?",
            "Do I need a car to see the northern lights?",
            "What should I pack for a week in Norway in October?",
        ],
        "Bring a waterproof shell jacket and trousers, a warm mid layer, thermal base layers, waterproof "
        "hiking boots, a hat, gloves, a swimsuit for hot pools and a power adapter.",
    ),
    _t(
        "How do I create a virtual environment in Python?",
        [
            "python create virtual env how",
            "how can I make a virtualenv in python",
            "whats the command to create a python virtual environment",
        ],
        [
            "How do I activate a virtual environment on Windows?",
            "How do I create a virtual environment with conda?",
            "How do I delete a virtual environment?",
        ],
        "Run python -m venv .venv in your project folder, then activate it with source .venv/bin/activate "
        "on Linux and macOS. Install packages with pip while it is active.",
    ),
    _t(
        "What is the boiling point of water at high altitude?",
        [
            "at high altitude what is water's boiling point",
            "boiling point of water at altitude?",
            "what temperature does water boil at high altitudes",
        ],
        [
            "What is the boiling point of water at sea level?",
            "Why does it change with altitude?",
            "What is the boiling point of water in Denver?",
        ],
        "Water boils at a lower temperature as air pressure drops: about 95 C at 1,500 m and roughly "
        "90 C at 3,000 m, compared with 100 C at sea level.",
    ),
    _t(
        "How do I write a cover letter for a software engineering job?",
        [
            "how should I write a cover letter for a software engineer position",
            "cover letter for software engineering job - how do I write one?",
            "tips to write a software engineering cover letter",
        ],
        [
            "How do I write a cover letter for a data analyst job?",
            "How long should it be?",
            "Can you write one for a junior role at Google?",
        ],
        "Open with the role and why the company interests you, then give two short examples of projects "
        "with measurable results, match them to the job description and close with a call to action.",
    ),
    _t(
        "What does HTTP status 403 mean?",
        ["http 403 meaning?", "what is a 403 status code in HTTP", "what's the meaning of HTTP error 403"],
        ["What does HTTP status 401 mean?", "How is 403 different from 404?", "How do I fix a 403 error in nginx?"],
        "403 Forbidden means the server understood the request but refuses to authorize it. Unlike 401, "
        "sending credentials again will not help unless your permissions change.",
    ),
    _t(
        "How do I get rid of fruit flies in my kitchen?",
        [
            "how to get rid of fruit flies in the kitchen",
            "fruit flies in my kitchen, how do I get rid of them",
            "what's the best way to eliminate fruit flies in a kitchen",
        ],
        [
            "How do I get rid of ants in my kitchen?",
            "Why do they keep coming back?",
            "How do I get rid of fruit flies in my houseplants?",
        ],
        "Remove ripe fruit and take out the trash, then set a trap: a small bowl of apple cider vinegar "
        "with a drop of dish soap. Clean drains, as flies breed in the film inside them.",
    ),
)

# Replies that reject or correct the previous answer (labelled pushback). A few use wording the
# detector does not look for, on purpose.
PUSHBACK: tuple[str, ...] = (
    "That's wrong.",
    "No, that's not right.",
    "this doesn't work",
    "That is incorrect.",
    "That's not what I asked.",
    "You misunderstood my question.",
    "It still doesn't work, same error as before.",
    "Your code doesn't even compile.",
    "Nope, wrong again.",
    "I don't think that's correct.",
    "That can't be right.",
    "You're wrong about that.",
    "not what I asked for",
    "wrong",
    "Incorrect. Please check again.",
    "I tried your code and it throws an error.",
    "When I run it I get a TypeError.",
    "this is completely wrong lol",
    "uh no, that's not how it works",
    "No, I meant something different.",
    "No, I meant the other way around.",
    "That answer is outdated.",
    "Are you sure? That seems off.",
    "Hmm, that seems off to me.",
    "I think you confused it with something else.",
    "Nope. Try again.",
    "useless answer",
    "No. It should be the opposite.",
    "Actually that's not true at all.",
    "That's not it.",
    "that doesn't answer my question",
    "You didn't answer the question.",
)

# Replies that look like rejections but are not (hard negatives for pushback).
PUSHBACK_NEGATIVE: tuple[str, ...] = (
    "No problem, thanks!",
    "No, that's all for now.",
    "No thanks, I'm good.",
    "Nope, that's everything.",
    "What's wrong with my code? It prints None.",
    "Is it wrong to use global variables in Python?",
    "Why doesn't my for loop work? It never stops.",
    "Nothing wrong with that, thanks!",
    "If it doesn't work, what should I try next?",
    "That's not bad at all!",
    "No, you're right.",
    "How do you say 'that's wrong' in Spanish?",
    "My teacher said my essay was incorrect, can you check it?",
    "Not really a question, but I appreciate the help.",
    "no worries",
    "I don't think that's wrong, just unusual.",
    "No, it's fine as it is.",
    "Is that right-handed or left-handed?",
)

THANKS: tuple[str, ...] = (
    "Thanks!",
    "thank you so much",
    "Perfect, that's exactly it.",
    "Awesome, that worked.",
    "cheers",
    "That helped, thank you.",
    "ty",
    "Got it, thanks.",
    "appreciate it!",
    "Much appreciated.",
    "great, thanks",
    "Brilliant, thank you!",
    "thx",
    "That works, thanks a lot!",
)

# Replies with grateful words that are not approval (hard negatives for positive); True = also pushback.
THANKS_NEGATIVE: tuple[tuple[str, bool], ...] = (
    ("Thanks, but that's wrong.", True),
    ("no thanks", False),
    ("Thanks for nothing.", True),
    ("Great, now it doesn't work at all.", True),
    ("How do I write a thank you note to my boss?", False),
    ("Exactly how long should I wait before trying again?", False),
    ("Thanks, but the second part is incorrect.", True),
    ("perfect? it doesn't even compile", True),
)
