"""The API suites of the everyday paths, whole, against a server under
valgrind's memcheck (tests/valgrind/test_valgrind.py's Memcheck): the
standard process and its stages, case work records, referrals, merges, the
fifteen programs, the audit trail, privacy and sharing, resources, the seed
rules and tokens. Each suite asserts what it asserts in tests/api; here
memcheck must also find nothing by the server's exit."""
import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "api"))

import test_audit  # noqa: E402
import test_casework  # noqa: E402
import test_identity  # noqa: E402
import test_people  # noqa: E402
import test_privacy  # noqa: E402
import test_process  # noqa: E402
import test_programs  # noqa: E402
import test_referrals  # noqa: E402
import test_resources  # noqa: E402
import test_seeds  # noqa: E402
from test_valgrind import Memcheck  # noqa: E402


class Process(Memcheck, test_process.ProcessTest):
    pass


class Casework(Memcheck, test_casework.CaseworkTest):
    pass


class Referrals(Memcheck, test_referrals.ReferralTest):
    pass


class Merges(Memcheck, test_people.MergeTest):
    pass


class Programs(Memcheck, test_programs.ProgramsTest):
    pass


class Audit(Memcheck, test_audit.AuditTest):
    pass


class Privacy(Memcheck, test_privacy.PrivacyTest):
    pass


class Resources(Memcheck, test_resources.ResourceTest):
    pass


class Seeds(Memcheck, test_seeds.SeedsTest):
    pass


class Tokens(Memcheck, test_identity.TokenTest):
    pass


if __name__ == "__main__":
    unittest.main()
