#include "admin/admin_api.hpp"
#include "admin/secrets.hpp"
#include "app/commands.hpp"
#include "app/store_factory.hpp"

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>

namespace llmgw::app {

namespace {

int fail(const std::string& msg) {
  std::fprintf(stderr, "llmgw: %s\n", msg.c_str());
  return 1;
}

store::AuditRecord cli_actor() {
  store::AuditRecord a;
  a.actor_type = "cli";
  a.actor_name = "cli";
  return a;
}

}  // namespace

int run_admin_create_user(const core::Settings& settings, const std::string& email,
                          const std::string& role_text) {
  const auto role = admin::parse_role(role_text);
  if (!role) {
    return fail("--role must be viewer, editor or admin");
  }
  std::string password;
  if (!std::getline(std::cin, password)) {
    return fail("give the password on standard input (first line)");
  }
  if (!password.empty() && password.back() == '\r') {
    password.pop_back();
  }
  try {
    const auto owned_store = open_store(settings);
    store::Store& st = *owned_store;
    st.migrate();
    const auto user = admin::create_admin_user(st, email, password, *role, cli_actor());
    std::printf("id: %s\nemail: %s\nrole: %s\n", user.id.c_str(), user.email.c_str(),
                user.role.c_str());
    return 0;
  } catch (const store::ConflictError&) {
    return fail("an admin user with this email already exists");
  } catch (const std::exception& e) {
    return fail(e.what());
  }
}

int run_admin_rotate_master_key(const core::Settings& settings, const std::string& new_key_file) {
  try {
    // A running gateway holds the keys in memory: resealing under it would leave it unable
    // to read the credentials (and what it wrote under the old key unreadable after).
    const int lock = admin::lock_master_key(settings.data_dir, /*exclusive=*/true);
    if (lock < 0) {
      return fail("a gateway is running on " + settings.data_dir +
                  " (it holds master.key.lock): stop every gateway on it before rotating the master key");
    }
    const auto owned_store = open_store(settings);
    store::Store& st = *owned_store;
    st.migrate();
    if (admin::finish_rotation(settings.data_dir, st)) {
      std::printf("an interrupted rotation was completed first\n");
    }
    const auto current = admin::load_master_keys(settings.data_dir, /*create=*/false);
    auth::Bytes fresh(32);
    if (!new_key_file.empty()) {
      auto k = admin::read_key_file(new_key_file);
      if (!k) {
        return fail(new_key_file + ": no such file");
      }
      fresh = std::move(*k);
    } else {
      core::secure_random(fresh);
    }
    const admin::MasterKeyCodec from(current.keys);
    const admin::MasterKeyCodec to({fresh});
    if (current.source == "LLMGW_MASTER_KEY") {
      // The environment holds the key: reseal, then the operator moves the variable.
      if (new_key_file.empty()) {
        return fail("with LLMGW_MASTER_KEY set, give the new key with --new-key-file");
      }
      const std::size_t n = st.reseal_credentials(&from, to);
      st.set_secret_check(std::string(admin::kMasterKeyCheck),
                          admin::secret_check_value(admin::kMasterKeyCheck, fresh));
      std::printf("%zu credentials re-encrypted. Set LLMGW_MASTER_KEY to the new key (keep the "
                  "old one in LLMGW_MASTER_KEY_PREVIOUS until every replica restarted).\n",
                  n);
      return 0;
    }
    // File-held key: write the new key beside the old one, commit, then rename. A crash in
    // between is finished at the next start (finish_rotation).
    const std::string path = settings.data_dir + "/master.key";
    admin::write_key_file(path + ".new", fresh);
    std::size_t n = 0;
    try {
      n = st.reseal_credentials(&from, to);
      // Before the rename: a crash in between is finished by the next start.
      st.set_secret_check(std::string(admin::kMasterKeyCheck),
                          admin::secret_check_value(admin::kMasterKeyCheck, fresh));
    } catch (...) {
      std::filesystem::remove(path + ".new");  // nothing was resealed: the old key stays
      throw;
    }
    std::filesystem::rename(path + ".new", path);
    std::printf("%zu credentials re-encrypted; %s holds the new key.\n", n, path.c_str());
    return 0;
  } catch (const std::exception& e) {
    return fail(e.what());
  }
}

int run_admin_adopt_jwt_secret(const core::Settings& settings) {
  try {
    const auto owned_store = open_store(settings);
    store::Store& st = *owned_store;
    st.migrate();
    const auth::Bytes secret = admin::load_jwt_secret(settings.data_dir);
    st.set_secret_check(std::string(admin::kJwtSecretCheck),
                        admin::secret_check_value(admin::kJwtSecretCheck, secret));
    std::printf("the admin JWT secret of this environment is now the one every gateway on this "
                "database must use\n");
    return 0;
  } catch (const std::exception& e) {
    return fail(e.what());
  }
}

int run_admin_adopt_master_key(const core::Settings& settings) {
  try {
    const int lock = admin::lock_master_key(settings.data_dir, /*exclusive=*/true);
    if (lock < 0) {
      return fail("a gateway is running on " + settings.data_dir + ": stop it first");
    }
    const auto owned_store = open_store(settings);
    store::Store& st = *owned_store;
    st.migrate();
    const auto keys = admin::load_master_keys(settings.data_dir, /*create=*/true);
    st.set_secret_check(std::string(admin::kMasterKeyCheck),
                        admin::secret_check_value(admin::kMasterKeyCheck, keys.keys.front()));
    st.set_secret_codec(std::make_shared<admin::MasterKeyCodec>(keys.keys));
    std::size_t unreadable = 0;
    for (const auto& p : st.list_providers()) {
      unreadable += p.credential_unreadable ? 1 : 0;
    }
    std::printf("the master key of %s is now the one every gateway on this database must use; "
                "%zu provider credential(s) sealed under another key must be given again\n",
                keys.source.c_str(), unreadable);
    return 0;
  } catch (const std::exception& e) {
    return fail(e.what());
  }
}

}  // namespace llmgw::app
