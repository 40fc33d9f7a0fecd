"""The character sets every stage agrees on, defined once.

trainPart1 numbers its folders Sample001..Sample062 in the order 0-9, A-Z, a-z; a class index is
that number minus one. Tasks 2 and 3 keep only the ten digits, which then match MNIST's labels.
"""
CLASS_CHARACTERS = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
DIGIT_CHARACTERS = CLASS_CHARACTERS[:10]

# Classes that handwriting often leaves ambiguous by shape alone: case pairs whose capital and
# lowercase differ only in size, and the digit/letter look-alikes listed in the team's guide
# (o/O/0, c/C, s/S, v/V, w/W, x/X, z/Z, k/K, p/P, u/U, 1/l/I, 9/g/q, 5/S, 2/Z). Merging each group
# into one class gives the "case-merged" accuracy reported beside plain top-1.
CASE_AMBIGUOUS_GROUPS = ("0Oo", "Cc", "5Ss", "Vv", "Ww", "Xx", "2Zz", "Kk", "Pp", "Uu", "1Il", "9gq")
