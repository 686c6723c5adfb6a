#include "tests/support/test_certificates.h"

#include <fstream>
#include <iterator>

#include "fmt/format.h"
#include "tests/support/process.h"

namespace meshtel::testing {

namespace {

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

}  // namespace

TestCertificates MakeTestCertificates(const std::string& dir) {
  TestCertificates certificates;
  if (!HaveProgram("openssl")) {
    certificates.unavailable = "the openssl command is not installed";
    return certificates;
  }
  const std::string key = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
  // A key and a request for `name`, signed by the CA with `extensions`.
  const auto sign = [&](const std::string& stem, const std::string& name,
                        const std::string& extensions) {
    WriteFile(fmt::format("{}/{}.ext", dir, stem), extensions);
    return fmt::format(
        "openssl req {0} -keyout {1}/{2}.key -out {1}/{2}.csr -subj '/CN={3}' && "
        "openssl x509 -req -in {1}/{2}.csr -CA {1}/ca.pem -CAkey {1}/ca.key -CAcreateserial "
        "-out {1}/{2}.pem -days 2 -extfile {1}/{2}.ext",
        key, dir, stem, name);
  };
  const std::string command = fmt::format(
      "set -e; openssl req -x509 {0} -keyout {1}/ca.key -out {1}/ca.pem -days 2 "
      "-subj '/CN=meshtel test CA'; {2}; {3}",
      key, dir,
      sign("server", kTestServerName,
           fmt::format("subjectAltName=DNS:{}\nextendedKeyUsage=serverAuth\n", kTestServerName)),
      sign("client", "meshtel-exporter", "extendedKeyUsage=clientAuth\n"));
  std::string output;
  if (RunCommand(command, &output) != 0) {
    certificates.unavailable = "openssl failed: " + output;
    return certificates;
  }
  certificates.ca_file = dir + "/ca.pem";
  certificates.server_cert_file = dir + "/server.pem";
  certificates.server_key_file = dir + "/server.key";
  certificates.client_cert_file = dir + "/client.pem";
  certificates.client_key_file = dir + "/client.key";
  certificates.ca_pem = ReadAll(certificates.ca_file);
  certificates.server_cert_pem = ReadAll(certificates.server_cert_file);
  certificates.server_key_pem = ReadAll(certificates.server_key_file);
  certificates.client_cert_pem = ReadAll(certificates.client_cert_file);
  certificates.client_key_pem = ReadAll(certificates.client_key_file);
  return certificates;
}

}  // namespace meshtel::testing
