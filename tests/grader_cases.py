"""A MATH-style answer case set, written by hand: (what the model boxed, the gold answer, equal?).

Each form the exact grader claims to handle appears as an equal pair and as a wrong answer of the
same form. Shared by the exact grader's tests and the math-verify grader's tests.
"""

EQUAL = [
    # integers and signs
    ("42", "42"), ("+7", "7"), ("-0", "0"), ("−5", "-5"), ("- 5", "-5"), ("007", "7"),
    # decimals
    ("0.5", "0.5"), (".5", "0.5"), ("0.50", "0.5"), ("12.0", "12"), ("3.", "3"), ("-2.25", "-2.25"),
    # thousands separators (no spaces)
    ("1,234", "1234"), ("1{,}234", "1234"), ("1,\\!234", "1234"), ("1,000,000", "1000000"),
    ("12,345.5", "12345.5"), ("1\\,000", "1000"),
    # fractions in every spelling
    ("\\frac{1}{2}", "0.5"), ("\\dfrac{1}{2}", "\\frac{1}{2}"), ("\\tfrac{1}{2}", "\\frac12"),
    ("\\frac43", "\\frac{4}{3}"), ("\\frac 59", "\\frac{5}{9}"), ("\\frac9{19}", "\\frac{9}{19}"),
    ("\\frac{9}2", "4.5"), ("3/6", "\\frac{1}{2}"), ("-\\frac{3}{4}", "-0.75"), ("\\frac{-3}{4}", "-\\frac34"),
    ("\\dfrac{14}{3}", "\\frac{14}{3}"), ("\\frac{6}{4}", "\\frac{3}{2}"),
    # mixed numbers
    ("2\\frac{1}{2}", "\\frac{5}{2}"), ("4\\frac{2}{3}", "\\frac{14}{3}"), ("-1\\frac{1}{4}", "-1.25"),
    # a leading "x ="
    ("x=5", "5"), ("x = 5", "5"), ("y = -3", "-3"), ("k=\\frac{1}{2}", "0.5"), ("n = 12", "n=12"),
    # \left \right
    ("\\left(3, \\frac{\\pi}{2}\\right)", "(3,\\frac{\\pi}{2})"), ("\\left( 1, 2 \\right)", "(1,2)"),
    # degrees
    ("90^\\circ", "90"), ("90^{\\circ}", "90"), ("45", "45^\\circ"), ("30°", "30"),
    # dollars and percent
    ("\\$18.90", "18.90"), ("\\$18.90", "18.9"), ("$5$", "5"), ("50\\%", "50"), ("50%", "50\\%"),
    ("\\$1,000", "1000"),
    # trailing units
    ("5\\text{ cm}", "5"), ("5 \\text{ inches}", "5"), ("12\\textnormal{ feet}", "12"), ("7\\mbox{ days}", "7"),
    ("20\\text{ cm}^2", "20"), ("36 \\text{square units}", "36"), ("3\\text{ dollars}", "\\$3"),
    # LaTeX spacing
    ("1\\,234", "1234"), ("\\frac{1}{2}\\;", "0.5"), ("\\displaystyle\\frac{1}{3}", "\\frac13"), ("~4", "4"),
    # scientific notation
    ("1.5\\times10^{3}", "1500"), ("2\\times 10^3", "2000"),
    # non-numbers: normalised strings
    ("3\\sqrt{13}", "3\\sqrt{13}"), ("3 \\sqrt{13}", "3\\sqrt{13}"), ("3\\sqrt2", "3\\sqrt{2}"),
    ("\\frac{\\sqrt{3}}{2}", "\\frac{\\sqrt3}{2}"), ("2\\pi", "2 \\pi"), ("\\frac\\pi2", "\\frac{\\pi}{2}"),
    ("\\text{Monday}", "\\text{Monday}"), ("\\text{(C)}", "\\text{(C)}"), ("(C)", "\\text{(C)}"), ("C", "(C)"),
    ("\\text{Devon}", "Devon"), ("x^2+2x+1", "x^2 + 2x + 1"), ("\\infty", "\\infty"),
    # tuples, intervals, sets, lists
    ("(3,\\frac{\\pi}{2})", "\\left( 3, \\frac{\\pi}{2} \\right)"), ("(1,2)", "(1, 2)"),
    ("(0.5, 1)", "(\\frac12, 1)"), ("[1,2)", "[1, 2)"), ("(-\\infty, 3]", "(-\\infty,3]"),
    ("\\{1,2\\}", "\\{2, 1\\}"), ("1, 2", "2,1"), ("-1, 3", "3, -1"), ("x \\in [2, 5]", "[2,5]"),
    ("(2,-1,\\frac{1}{2})", "(2, -1, 0.5)"),
    # matrices
    ("\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}", "\\begin{pmatrix}1\\\\2\\end{pmatrix}"),
    ("\\begin{pmatrix} 1/2 & 0 \\\\ 0 & 1 \\end{pmatrix}", "\\begin{pmatrix} \\frac12 & 0 \\\\ 0 & 1 \\end{pmatrix}"),
    # braces around the whole answer
    ("{5}", "5"), ("{{\\frac{1}{2}}}", "0.5"),
    # recall rules: an answer named on one side only
    ("(p,q)=(3,2)", "(3,2)"), ("(p, q) = (3, 2)", "(3,2)"), ("f(x)=2x+3", "2x+3"), ("f(x) = 2x + 3", "2x+3"),
    ("g(2) = 7", "7"), ("a_1 = 4", "4"),
    # ... or the same name on both sides
    ("\\cos(x) = \\frac{42}{59}", "\\cos(x)=\\frac{42}{59}"), ("\\cos(x)=\\frac{42}{59}", "\\frac{42}{59}"),
    ("x_1 = 4", "x_{1}=4"), ("(p, q) = (3, 2)", "(p,q)=(3,2)"), ("y \\in [2, 5]", "y=[2,5]"),
    # lists joined by words, \\cfrac, percent against a decimal, \\pm against a set, units as words
    ("1 \\text{ and } 2", "1, 2"), ("1 and 2", "2,1"), ("3 or 4", "3, 4"), ("1, 2, and 3", "1,2,3"),
    ("\\cfrac{1}{2}", "0.5"), ("10\\%", "0.1"), ("0.25", "25\\%"), ("\\pm 3", "-3, 3"), ("\\pm3", "\\{-3,3\\}"),
    ("x=\\pm 2", "2,-2"), ("1\\pm\\sqrt{2}", "1+\\sqrt2, 1-\\sqrt2"), ("5 cm", "5"), ("12 square feet", "12"),
    ("3 inches", "3"), ("4.5 meters", "\\frac92"),
    # a mixed number written with a space; unions and commas inside other forms
    ("1 1/2", "\\frac32"), ("(-\\infty,0)\\cup(0,\\infty)", "(-\\infty, 0) \\cup (0, \\infty)"), ("f(1, 2)", "f(1,2)"),
    ("(0,1)\\cup(2,3)", "(2,3)\\cup(0,1)"),
    # repeating decimals; exact values of sums of rationals times square roots and powers of pi
    ("2\\sqrt{3}", "\\sqrt{12}"), ("\\sqrt{2}/2", "\\frac{\\sqrt{2}}{2}"),
    ("\\frac{1}{\\sqrt{2}}", "\\frac{\\sqrt2}{2}"),
    ("\\frac{\\pi}{2}", "0.5\\pi"), ("\\pi/2", "\\frac12\\pi"), ("\\pi^{-1}", "\\frac{1}{\\pi}"),
    ("0.\\overline{3}", "\\frac13"), ("0.1\\overline{6}", "\\frac{1}{6}"), ("1.\\overline{09}", "\\frac{12}{11}"),
    ("\\frac{1}{1+\\sqrt{2}}", "\\sqrt{2}-1"),
    ("\\frac{1+\\sqrt{5}}{2}", "\\frac{1}{2}+\\frac{\\sqrt{5}}{2}"),
    ("(1+\\sqrt{2})^2", "3+2\\sqrt{2}"), ("\\sqrt{\\frac{3}{4}}", "\\frac{\\sqrt{3}}{2}"),
    ("\\sqrt{8}\\cdot\\sqrt{3}", "2\\sqrt{6}"),
    ("\\frac{4\\pi}{\\sqrt{3}}", "\\frac{4\\sqrt{3}\\pi}{3}"), ("1\\pm\\sqrt{2}", "1-\\sqrt{2}, \\sqrt{2}+1"),
    ("(2\\sqrt{2}, \\frac{\\pi}{4})", "(\\sqrt{8}, 0.25\\pi)"), ("-\\sqrt{3}", "\\frac{-3}{\\sqrt{3}}"),
    ("\\sqrt[3]2", "\\sqrt[3]{2}"), ("2\\sqrt [4] {3}", "2\\sqrt[4]{3}"),
    # two spellings of one symbol, and braces around one character after ^ or _
    ("x \\leq 5", "x\\le 5"), ("x \\geqslant 2", "x ≥ 2"), ("x\\neq 3", "x \\ne 3"), ("2π", "2\\pi"),
    ("(-∞, 3]", "(-\\infty,3]"),
    ("\\varnothing", "\\emptyset"), ("\\{\\}", "∅"), ("1011_2", "1011_{2}"), ("\\sin^2 x", "\\sin^{2}x"),
    # polynomials in one-letter variables (equal for every value of the letters)
    ("2x+1+x^2", "x^2 + 2*x + 1"), ("y = x^2+2x+1", "(x+1)^2"), ("\\frac{x+2}{7}", "\\frac{x}{7}+\\frac{2}{7}"),
    ("\\pi r^2", "r^2\\pi"), ("\\frac{1}{x}", "x^{-1}"), ("3+4i", "4i+3"), ("-\\frac{a}{b}", "\\frac{-a}{b}"),
]

WRONG = [
    # integers and signs
    ("41", "42"), ("-7", "7"), ("5", "-5"), ("70", "7"),
    # decimals
    ("0.51", "0.5"), ("0.333", "\\frac13"), ("12.01", "12"),
    # thousands: spaces or wrong grouping are not separators
    ("32, 349", "32349"), ("1,2345", "12345"), ("12,34", "1234"), ("1,234", "1.234"),
    # fractions
    ("\\frac{1}{3}", "0.5"), ("\\frac34", "\\frac{4}{3}"), ("\\frac{5}{9}", "\\frac{9}{5}"), ("3/6", "\\frac{1}{3}"),
    ("\\frac{1}{0}", "0"), ("-\\frac{3}{4}", "0.75"),
    # mixed numbers
    ("2\\frac{1}{2}", "\\frac{5}{3}"), ("2\\frac{1}{2}", "2"),
    # leading variable
    ("x=6", "5"), ("x \\le 5", "5"), ("x > 5", "5"),
    # \left \right
    ("\\left(3, \\frac{\\pi}{3}\\right)", "(3,\\frac{\\pi}{2})"),
    # degrees, dollars, percent
    ("91^\\circ", "90"), ("\\$18.91", "18.90"), ("51\\%", "50"),
    # units
    ("6\\text{ cm}", "5"), ("25\\text{ cm}^2", "20"),
    # non-numbers
    ("3\\sqrt{14}", "3\\sqrt{13}"), ("\\sqrt{13}", "3\\sqrt{13}"), ("\\frac{\\sqrt{3}}{3}", "\\frac{\\sqrt3}{2}"),
    ("\\pi", "2\\pi"), ("\\text{Tuesday}", "\\text{Monday}"), ("(D)", "\\text{(C)}"), ("x^2+2x", "x^2+2x+1"),
    ("-\\infty", "\\infty"), ("x+1", "1"),
    # tuples, intervals, sets, lists, matrices
    ("(1,2)", "(2,1)"), ("[1,2]", "[1,2)"), ("(1,2)", "1,2"), ("\\{1,2\\}", "\\{1,2,3\\}"), ("1, 2", "1, 3"),
    ("(1,2,3)", "(1,2)"), ("\\begin{pmatrix} 1 \\\\ 3 \\end{pmatrix}", "\\begin{pmatrix}1\\\\2\\end{pmatrix}"),
    ("12", "1,2"), ("(3,\\frac{\\pi}{2})", "3"),
    # empty and junk
    ("", "0"), ("\\text{}", "0"), ("{}", "1"),
    # recall rules must not add false positives: digits a space apart are never one number
    ("1 1/2", "\\frac{11}{2}"), ("1 2", "12"), ("12", "1 2"), ("1 000", "1"),
    ("10\\%", "0.01"), ("10", "0.1"), ("0.1", "10"), ("\\pm 3", "3"), ("3", "\\pm 3"), ("1\\pm\\sqrt2", "1+\\sqrt2"),
    ("(p,q)=(3,2)", "(2,3)"), ("f(x)=2x+3", "2x+4"),
    # a name is dropped only where one side has none: two different names are two different answers
    ("\\sin(x)=\\frac{42}{59}", "\\cos(x)=\\frac{42}{59}"), ("y = 3", "x = 3"), ("f(x)=2x+3", "g(x)=2x+3"),
    ("(p,q)=(3,2)", "(q,p)=(3,2)"), ("a_1 = 4", "a_2 = 4"), ("x \\in [2,5]", "y \\in [2,5]"), ("f'=2", "f=2"),
    ("x+y=5", "5"), ("2x=4", "4"), ("2 pi", "2"), ("3 sqrt", "3"),
    ("1 and 2", "1"), ("1 or 2", "2"), ("5 cm", "6"), ("(0,1)\\cup(2,3)", "(0,1)\\cup(2,4)"),
    ("(0,1)\\cup(2,3)", "(0,1)"),
    ("f(1,2)", "f(2,1)"),
    # exact values: near misses, readings refused as guesses (they match neither reading), and computations with a
    # rational result, which are not their result (a question's own "66+24" must not pass for 90)
    ("2\\sqrt{3}", "\\sqrt{6}"), ("\\sqrt{12}", "12"), ("\\frac{\\sqrt{2}}{2}", "\\sqrt{2}"), ("2^{10}", "210"),
    ("\\sqrt{2}", "1.41421356"), ("\\pi", "3.14159"), ("0.\\overline{3}", "0.333"), ("0.\\overline{3}", "0.3"),
    ("(1+\\sqrt{2})^2", "3+\\sqrt{2}"), ("1+\\sqrt{2}", "1-\\sqrt{2}"), ("2\\pi", "\\pi^2"), ("\\sqrt{-4}", "2"),
    ("\\sqrt{2}+\\sqrt{3}", "\\sqrt{5}"), ("\\frac{\\pi}{2}", "\\frac{2}{\\pi}"), ("0.\\overline{9}", "0.9"),
    ("1/2\\pi", "\\frac{\\pi}{2}"), ("1/2\\pi", "\\frac{1}{2\\pi}"), ("2\\frac{1}{2}\\pi", "\\pi"),
    ("2\\frac12\\pi", "\\frac52\\pi"), ("66+24", "90"), ("2^{10}", "1024"), ("\\sqrt{16}", "4"),
    ("\\sqrt{8}\\cdot\\sqrt{2}", "4"), ("0.\\overline{3}", "\\frac{1}{3}+0"), ("\\sqrt[3]{2}", "\\sqrt{2}"),
    ("\\sqrt[3]{2}", "\\sqrt[4]{2}"),
    ("x^2+2x+1", "x^3+2x+1"), ("2x+3", "2y+3"), ("X", "x"), ("(x+1)^2", "x^2+1"), ("\\frac{x}{2}", "\\frac{2}{x}"),
    ("odd", "dod"), ("f(2)", "2f"), ("x-x", "0"),
    ("x \\le 5", "x \\ge 5"), ("x \\le 5", "x < 5"), ("\\emptyset", "\\{0\\}"), ("1011_2", "1011_3"),
]

# Whole responses: extraction rules (three false positives an earlier grader made, and friends).
RESPONSES = [
    ("so the answer is \\boxed{42}.", "42", True),
    ("first \\boxed{1} then \\boxed{2}.", "2", True),
    ("first \\boxed{1} then \\boxed{2}.", "1", False),  # only the last box counts
    ("\\boxed{3} and finally \\boxed{1", "3", False),  # the last box never closes: no answer
    ("\\boxed{3} and finally \\boxed{1", "1", False),
    ("AZYUK2A", "2", False),  # no box: no answer (no last-number fallback)
    ("The total is 6 + 4 = 10, so", "10", False),  # cut off mid-sentence
    ("\\boxed{32, 349}", "32349", False),
    ("\\boxed {5}", "5", True),
    ("\\fbox{5}", "5", True),
    ("\\boxed{\\frac{1}{2}}", "0.5", True),
    ("$\\boxed{x = 5}$", "5", True),
    # an answer split over several final boxes is one list
    ("\\boxed{1}, \\boxed{2}, \\boxed{3}", "1,2,3", True),
    ("so $\\boxed{1}$ and $\\boxed{2}$.", "2, 1", True),
    ("\\boxed{1}, \\boxed{2}", "2", False),
    ("\\boxed{2}, \\boxed{2}", "2", True),
    ("\\boxed{1}, then \\boxed{2}", "2", True),
    ("\\boxed{1}, \\boxed{2", "1", False),
    # boxes that all hold one value are that one answer, written again
    ("\\boxed{15\\frac{39}{40}}, or \\boxed{\\frac{639}{40}}", "\\frac{639}{40}", True),
    ("$\\boxed{0.5}$ or $\\boxed{\\frac{1}{2}}$", "\\frac12", True),
    ("\\boxed{2}, \\boxed{2.0}", "2", True),
    ("\\boxed{15\\frac{39}{40}}, or \\boxed{\\frac{640}{40}}", "\\frac{639}{40}", False),
    ("\\boxed{15\\frac{39}{40}}, or \\boxed{\\frac{640}{40}}", "16", False),
    ("\\boxed{x = 1}, \\boxed{y = 1}", "1", False),  # two named answers are a list, not one
    ("\\boxed{0.5}, \\boxed{1}, \\boxed{\\frac12}", "1, 0.5", True),
]
