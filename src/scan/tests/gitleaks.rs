//! gitleaks configuration import.
