#pragma once
/// The SQL layer both stores are written on: a driver (SQLite in src/store/sqlite, PostgreSQL
/// in src/store/postgres) implements `Statement`, `Connection` and `Database`; the statements,
/// row readers, transactions and every `Store` method are written once over them
/// (src/store/sql/*.cpp). SQL text is written once, in PostgreSQL's spelling of parameters
/// (`$1`, `$2`, ...); what the dialects do differently lives in the drivers and in `Dialect`:
///
/// - parameters: the SQLite driver reads `$N` as `?N`;
/// - row locks: `FOR UPDATE` locks rows in PostgreSQL; the SQLite driver drops it (a write
///   transaction there holds the database's one write lock from BEGIN on);
/// - transactions: `TxKind::Write` is BEGIN IMMEDIATE in SQLite, READ COMMITTED in
///   PostgreSQL; `TxKind::Snapshot` is a deferred read in SQLite, REPEATABLE READ READ ONLY in
///   PostgreSQL;
/// - exact decimals: PostgreSQL adds NUMERIC money in the statement, SQLite cannot
///   (`Dialect::decimal_arithmetic`);
/// - booleans: bound and read through `bind_boolean` / `boolean`, whatever the column type;
/// - catalogue queries, migration and table locks: `Connection::table_exists`,
///   `lock_migrations`, `lock_table`;
/// - errors: each driver sorts its codes into `Failure`.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

namespace llmgw::store::sql {

/// What a failed statement means to the store.
enum class Failure : std::uint8_t {
  Other,    ///< anything else: the database may be down, full or read-only (worth a retry)
  Unique,   ///< a uniqueness rule: a taken id, name or hash
  Refused,  ///< the values: another constraint, a malformed or out-of-range value
  Lost,     ///< connection lost before COMMIT: the server rolled back, the call may run again
};

/// A failed statement. Messages carry the database's own text and an excerpt of the SQL,
/// never bound values (they may be secrets).
class Error : public std::runtime_error {
 public:
  Error(Failure failure, const std::string& message)
      : std::runtime_error(message), failure_(failure) {}
  [[nodiscard]] Failure failure() const noexcept { return failure_; }

 private:
  Failure failure_;
};

/// The start of `sql` an error message quotes (enough to tell which statement failed).
std::string sql_excerpt(std::string_view sql);

/// One prepared statement of a connection (cached by its SQL text for the connection's
/// life). Use it through `Query`, which resets it when done.
class Statement {
 public:
  virtual ~Statement() = default;

  // Parameters are numbered from 1 ($1, $2, ...). A text bound `borrowed` must stay valid
  // until the statement has run (the first step() returned) or is reset; others are copied.
  // A value the driver cannot send throws std::invalid_argument.
  virtual void bind_null(int index) = 0;
  virtual void bind_integer(int index, std::int64_t value) = 0;
  virtual void bind_boolean(int index, bool value) = 0;
  virtual void bind_text(int index, std::string_view value, bool borrowed) = 0;

  /// Rows one at a time as they arrive rather than the whole result at once (for results too
  /// large to hold; PostgreSQL's single-row mode). Call before the first step(). No other
  /// statement of the connection may run until this one is done or reset.
  virtual void stream() = 0;
  /// Runs the statement at the first call; true while there is a row to read.
  virtual bool step() = 0;
  /// Rows the last run of an INSERT, UPDATE or DELETE changed.
  [[nodiscard]] virtual std::int64_t changes() const = 0;
  /// Done: ready to run again, bindings cleared (no borrowed text outlives its use).
  virtual void reset() noexcept = 0;
  /// Ready to run again; the bindings may stay (clearing them is a visible cost in the usage
  /// hot loop), so the next run must bind every parameter again.
  virtual void restart() noexcept = 0;

  // Columns of the current row, numbered from 0. NULL reads as 0, false or "".
  [[nodiscard]] virtual bool is_null(int column) const = 0;
  [[nodiscard]] virtual std::int64_t integer(int column) const = 0;
  [[nodiscard]] virtual bool boolean(int column) const = 0;
  /// Valid until the next step() or reset().
  [[nodiscard]] virtual std::string_view text(int column) const = 0;
};

/// Binds SQL NULL for an empty string.
inline std::optional<std::string_view> null_if_empty(std::string_view text) noexcept {
  if (text.empty()) {
    return std::nullopt;
  }
  return text;
}

/// One use of a cached statement: binds, steps, reads; resets the statement when destroyed
/// (a statement left mid-step would keep SQLite's read snapshot or PostgreSQL's result).
class Query {
 public:
  explicit Query(Statement& statement) noexcept : statement_(&statement) {}
  ~Query() {
    if (statement_ != nullptr) {
      statement_->reset();
    }
  }
  Query(Query&& other) noexcept
      : statement_(std::exchange(other.statement_, nullptr)),
        stepped_(other.stepped_),
        has_row_(other.has_row_) {}
  Query(const Query&) = delete;
  Query& operator=(const Query&) = delete;
  Query& operator=(Query&&) = delete;

  /// Binds `values` to $1, $2, ... in order (text is copied).
  template <typename... Values>
  Query& bind(const Values&... values) {
    int index = 0;
    (bind_one(++index, values, false), ...);
    return *this;
  }
  /// Like `bind`, but text is not copied: every value must outlive the run (the usage hot
  /// loop, where the copies were a visible share of the cost).
  template <typename... Values>
  Query& bind_borrowed(const Values&... values) {
    int index = 0;
    (bind_one(++index, values, true), ...);
    return *this;
  }
  /// Like `bind_borrowed`, to $first, $first + 1, ... (rows of a multi-row INSERT).
  template <typename... Values>
  Query& bind_borrowed_at(int first, const Values&... values) {
    int index = first - 1;
    (bind_one(++index, values, true), ...);
    return *this;
  }
  /// Binds one value to parameter `index` (from 1), copied.
  template <typename T>
  Query& bind_at(int index, const T& value) {
    bind_one(index, value, false);
    return *this;
  }

  Query& stream() {
    statement_->stream();
    return *this;
  }
  /// Runs the statement at the first call; true while there is a row to read.
  bool step() {
    stepped_ = true;
    has_row_ = statement_->step();
    return has_row_;
  }
  /// Whether the statement returns no row (runs it if it has not run; reads no further).
  bool empty() {
    if (!stepped_) {
      step();
    }
    return !has_row_;
  }
  /// The first row (runs the statement if it has not run). Throws when there is none: for
  /// statements that always return one (COUNT, RETURNING of an INSERT).
  Query& first() {
    if (empty()) {
      throw Error(Failure::Other, "sql: the statement returned no row");
    }
    return *this;
  }
  /// Runs a statement that returns no rows (or whose rows are not needed); returns how many
  /// rows it changed.
  std::int64_t run() {
    while (step()) {
    }
    return statement_->changes();
  }
  /// Ready to run again (bind every parameter again).
  void reset() noexcept {
    statement_->restart();
    stepped_ = false;
    has_row_ = false;
  }

  [[nodiscard]] bool is_null(int column) const { return statement_->is_null(column); }
  [[nodiscard]] std::int64_t integer(int column) const { return statement_->integer(column); }
  [[nodiscard]] bool boolean(int column) const { return statement_->boolean(column); }
  [[nodiscard]] std::string_view view(int column) const { return statement_->text(column); }
  [[nodiscard]] std::string text(int column) const { return std::string(view(column)); }
  [[nodiscard]] std::optional<std::int64_t> optional_integer(int column) const {
    if (is_null(column)) {
      return std::nullopt;
    }
    return integer(column);
  }
  [[nodiscard]] std::optional<std::string> optional_text(int column) const {
    if (is_null(column)) {
      return std::nullopt;
    }
    return text(column);
  }

 private:
  template <typename T>
  struct IsOptional : std::false_type {};
  template <typename T>
  struct IsOptional<std::optional<T>> : std::true_type {};

  template <typename T>
  void bind_one(int index, const T& value, bool borrowed) {
    if constexpr (std::is_same_v<T, std::nullptr_t>) {
      statement_->bind_null(index);
    } else if constexpr (IsOptional<T>::value) {
      if (value) {
        bind_one(index, *value, borrowed);
      } else {
        statement_->bind_null(index);
      }
    } else if constexpr (std::is_same_v<T, bool>) {
      statement_->bind_boolean(index, value);
    } else if constexpr (std::is_integral_v<T>) {
      statement_->bind_integer(index, static_cast<std::int64_t>(value));
    } else {
      statement_->bind_text(index, std::string_view(value), borrowed);
    }
  }

  Statement* statement_;
  bool stepped_ = false;
  bool has_row_ = false;
};

enum class TxKind : std::uint8_t {
  Write,     ///< writers run one at a time where they lock the same rows
  Snapshot,  ///< read only; every statement sees one snapshot
};

/// What the statements written once must know of the dialect.
struct Dialect {
  /// The database adds exact decimals (NUMERIC) in a statement; else money is added in C++.
  bool decimal_arithmetic = false;
  /// Usage rows per INSERT: 1 where a statement costs no round trip (SQLite), more where it
  /// does (PostgreSQL).
  std::size_t usage_rows_per_insert = 1;
  /// list_keys' filters: $2 enabled (NULL: any), $3 a substring of the name ('': any), $4 a
  /// whole element of the tags array ('': any). String search and JSON arrays are spelled
  /// differently.
  std::string_view key_filters;
  /// find_admin_user_by_email's condition on $1: ASCII case ignored, as the unique index does.
  std::string_view email_equals;
};

/// One connection with its statement cache. Used by one thread at a time.
class Connection {
 public:
  virtual ~Connection() = default;

  /// The cached statement for `sql` (prepared on first use on this connection).
  virtual Statement& prepare(std::string_view sql) = 0;
  /// Runs statements without parameters (DDL; several separated by ';').
  virtual void exec(std::string_view sql) = 0;

  virtual void begin(TxKind kind) = 0;
  virtual void commit() = 0;
  /// Rolls back an open transaction; ignores failures (the session may be gone, which rolls
  /// back as well).
  virtual void rollback() noexcept = 0;

  [[nodiscard]] virtual const Dialect& dialect() const noexcept = 0;
  virtual bool table_exists(std::string_view table) = 0;
  /// Inside a write transaction: waits until no other process migrates the same database.
  virtual void lock_migrations() = 0;
  /// Inside a write transaction: no other writer changes `table` until it ends.
  virtual void lock_table(std::string_view table) = 0;

  /// A use of the statement for `sql` with `values` bound to $1, $2, ...
  template <typename... Values>
  [[nodiscard]] Query query(std::string_view sql, const Values&... values) {
    Query q(prepare(sql));
    q.bind(values...);
    return q;
  }
  /// Runs `sql` with `values` bound; returns how many rows it changed.
  template <typename... Values>
  std::int64_t run(std::string_view sql, const Values&... values) {
    Query q(prepare(sql));
    q.bind(values...);
    return q.run();
  }
};

/// BEGIN on construction; ROLLBACK on destruction unless committed.
class Transaction {
 public:
  Transaction(Connection& connection, TxKind kind) : connection_(connection) {
    connection_.begin(kind);
  }
  ~Transaction() {
    if (active_) {
      connection_.rollback();
    }
  }
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;

  void commit() {
    active_ = false;
    connection_.commit();
  }

 private:
  Connection& connection_;
  bool active_ = true;
};

/// One schema step: `sql` holds one or more statements run in one transaction.
struct Migration {
  int version;
  std::string_view name;
  std::string_view sql;
};

/// Which connection a call wants.
enum class Use : std::uint8_t {
  Default,
  Report,  ///< a long read (usage reports): where it helps, a connection of its own
};

/// A database: its connections and how calls get one.
class Database {
 public:
  virtual ~Database() = default;

  /// Runs `call` on a connection of this database, one call per connection at a time. A
  /// driver may run it once more after a `Failure::Lost` (the server rolled the first run
  /// back), so `call` keeps its state inside.
  virtual void run(Use use, const std::function<void(Connection&)>& call) = 0;

  /// Names the database in messages (a path, or a URL without credentials).
  [[nodiscard]] virtual const std::string& description() const noexcept = 0;
  /// The schema, by strictly increasing version starting at 1.
  [[nodiscard]] virtual std::span<const Migration> migrations() const noexcept = 0;
  /// DDL of the table that records applied migrations.
  [[nodiscard]] virtual std::string_view migrations_table_ddl() const noexcept = 0;
};

/// Runs `fn(Connection&)` through `db.run` and returns its result.
template <typename Fn>
auto call(Database& db, Use use, Fn&& fn) -> decltype(fn(std::declval<Connection&>())) {
  using Result = decltype(fn(std::declval<Connection&>()));
  if constexpr (std::is_void_v<Result>) {
    db.run(use, [&](Connection& c) { fn(c); });
  } else {
    std::optional<Result> result;
    db.run(use, [&](Connection& c) { result.emplace(fn(c)); });
    return std::move(*result);
  }
}

}  // namespace llmgw::store::sql
