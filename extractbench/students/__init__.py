"""Students: learners trained on a harvest, registered by name in :data:`STUDENTS`."""

from extractbench.students.base import STUDENTS, FitReport, Student, TrainPair

__all__ = ["STUDENTS", "FitReport", "Student", "TrainPair"]
