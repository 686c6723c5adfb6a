#pragma once
// Test support: a certificate authority and the certificates it signs, made with the `openssl`
// command in a directory of the test's, for TLS tests (exporters' gRPC channels).
//
// The server certificate names "meshtel-test.local" (DNS subjectAltName, serverAuth); the
// client certificate "meshtel-exporter" (clientAuth). All are EC P-256 keys valid for 2 days,
// PEM files and their contents.
// Errors: `unavailable` says why they could not be made (no openssl...), empty otherwise.
// Threading: none; call it from the test's thread.

#include <string>

namespace meshtel::testing {

inline constexpr char kTestServerName[] = "meshtel-test.local";

struct TestCertificates {
  std::string unavailable;
  std::string ca_file;
  std::string server_cert_file;
  std::string server_key_file;
  std::string client_cert_file;
  std::string client_key_file;
  std::string ca_pem;
  std::string server_cert_pem;
  std::string server_key_pem;
  std::string client_cert_pem;
  std::string client_key_pem;
};

// Makes the CA and both certificates in `dir` (which must exist).
TestCertificates MakeTestCertificates(const std::string& dir);

}  // namespace meshtel::testing
