"""The SQL beneath ImageImport's transitions: UPDATE ... RETURNING and INSERT with its event.

Each transition moves one row and writes its audit event; on PostgreSQL one
statement does both (a WITH holding the UPDATE or INSERT and the event's
INSERT ... SELECT), its SQL compiled by the ORM once per shape and sent again
with new values after that. The models say what moves; this module says how
the database is asked. Of an import it knows only that a move is
conditional on the row's `status` column.
"""

import string

from django.db import DEFAULT_DB_ALIAS, connection, connections
from django.db.models import Case, F, Value, When
from django.db.models.functions import Cast
from django.db.models.sql.subqueries import InsertQuery, UpdateQuery


def update_returning(rows, fields, columns=None, *, event=None):
    """`rows.update(**fields)` as one statement that also returns the rows it changed.

    A transition used to follow its conditional UPDATE with refresh_from_db(),
    a second statement, because Django's update() returns only a count. Both
    databases the portal runs on (PostgreSQL, and SQLite from 3.35) can return
    the rows from the UPDATE itself: the statement update() would send is sent
    with RETURNING, and each row read by RowReader, so that every field's
    converter applies. Values the database computes (attempts + 1) come back as
    stored, and so does every column another writer changed meanwhile, as
    refresh_from_db() gave them. Returns model instances holding `columns`
    (field names; all by default), the primary key always.

    With `event` (an AuditEvent not yet written; PostgreSQL only), the same
    statement also writes it for each row changed, naming that row and its
    team: WITH moved AS (UPDATE ... RETURNING ...) INSERT ... SELECT ... FROM
    moved.
    """
    sql, params, reader = update_returning_sql(rows, fields, columns, event=event)
    return run_returning(connections[rows.db], sql, params, reader)


def update_returning_sql(rows, fields, columns=None, *, event=None):
    """update_returning's (sql, params, RowReader), as the ORM compiles them."""
    query = rows.query.chain(UpdateQuery)
    query.add_update_values(fields)
    query.clear_select_clause()
    sql, params = query.get_compiler(rows.db).as_sql()
    model = rows.model
    connection = connections[rows.db]
    quote = connection.ops.quote_name
    returned = [model._meta.pk] + [
        field
        for field in model._meta.concrete_fields
        if not field.primary_key and (columns is None or field.name in columns)
    ]
    returning = ", ".join(quote(field.column) for field in returned)
    sql, params = f"{sql} RETURNING {returning}", list(params)
    if event is not None:
        insert = event_insert(event, model, "moved", connection)
        sql = f"WITH moved AS ({sql}), event AS ({insert}) SELECT * FROM moved"
        params += event_params(event, model, "moved", connection)
    return sql, params, RowReader.of(model, tuple(returned), connection)


def run_returning(connection, sql, params, reader):
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        # fetchall(): read the statement to its end (SQLite finishes it only then).
        return [reader.instance(row, connection) for row in cursor.fetchall()]


class MoveStatement:
    """A one-statement move's SQL, compiled by the ORM once for each shape of move.

    The claim and mark_importing compiled the same UPDATE for every submit
    task: the ORM's query building was a fifth of the worker's CPU (issue
    14). A move's SQL depends only on its shape: which fields it sets, which
    of them to NULL or to an expression, and its event's text template. Its
    values are parameters. So the statement the ORM compiles for the first
    move of a shape is kept, and later moves of that shape send it with their
    own values, prepared as the ORM prepares them (get_db_prep_save for a
    field's value, get_db_prep_value for the WHERE's). A shape is kept only if,
    for that first move, those parameters are exactly the ORM's; otherwise
    every move of that shape is compiled by the ORM, as before.
    """

    NULL, VALUE = "NULL", "value"
    KEPT_SHAPES = 100  # an expression built from a value would make a shape per call
    _by_shape = {}

    def __init__(self, sql, reader, expression_params):
        self.sql = sql
        self.reader = reader
        self.expression_params = expression_params

    @classmethod
    def run(cls, model, pk, old_status, values, event):
        """update_returning(filter(pk=pk, status=old_status), values, event=event).

        On the default database, as every transition's transaction and the
        new import's INSERT: the portal writes to one database.
        """
        connection = default_connection()
        shape = cls.shape(model, connection, values, event)
        try:
            statement = cls._by_shape.get(shape)
        except TypeError:  # an expression of an unhashable object: no shape to keep
            shape = statement = None
        if statement is None:
            return cls.compile_and_run(shape, model, pk, old_status, values, event, connection)
        params = statement.params(model, pk, old_status, values, event, connection)
        return run_returning(connection, statement.sql, params, statement.reader)

    @classmethod
    def shape(cls, model, connection, values, event):
        """What the move's SQL depends on."""
        slots = tuple((name, cls.slot(value)) for name, value in values.items())
        return (model, connection.alias, slots, event_shape(event))

    @classmethod
    def slot(cls, value):
        # An expression is its own slot: Django's expressions are equal, and
        # hash, by their definition (F("attempts") + 1).
        if value is None:
            return cls.NULL
        return value if hasattr(value, "resolve_expression") else cls.VALUE

    @classmethod
    def compile_and_run(cls, shape, model, pk, old_status, values, event, connection):
        rows = model._default_manager.using(connection.alias).filter(pk=pk, status=old_status)
        sql, params, reader = update_returning_sql(rows, values, event=event)
        if shape is not None and len(cls._by_shape) < cls.KEPT_SHAPES:
            statement = cls(sql, reader, cls.expression_params_of(model, values, connection))
            derived = statement.params(model, pk, old_status, values, event, connection)
            if same_params(derived, params):
                cls._by_shape[shape] = statement
        return run_returning(connection, sql, params, reader)

    @classmethod
    def expression_params_of(cls, model, values, connection):
        """Each expression's parameters among `values`, compiled as the UPDATE compiles it."""
        query = UpdateQuery(model)
        compiler = query.get_compiler(connection=connection)
        params = {}
        for name, value in values.items():
            if cls.slot(value) not in (cls.NULL, cls.VALUE):
                resolved = value.resolve_expression(query, allow_joins=False, for_save=True)
                params[name] = list(compiler.compile(resolved)[1])
        return params

    def params(self, model, pk, old_status, values, event, connection):
        meta = model._meta
        params = []
        for name, value in values.items():  # as SQLUpdateCompiler.as_sql takes them
            slot = self.slot(value)
            if slot == self.VALUE:
                field = meta.get_field(name)
                if hasattr(value, "prepare_database_save"):  # a model instance, for a key
                    value = value.prepare_database_save(field)
                params.append(field.get_db_prep_save(value, connection))
            elif slot != self.NULL:
                params += self.expression_params[name]
        params.append(meta.pk.get_db_prep_value(pk, connection))
        params.append(meta.get_field("status").get_db_prep_value(old_status, connection))
        return params + event_params(event, model, "moved", connection)


def default_connection():
    """The default database's connection itself, looked up once.

    `django.db.connection` is a proxy that looks the connection up again on
    every attribute, and preparing a row's values reads several.
    """
    return connections[DEFAULT_DB_ALIAS]


def can_write_event_in_one_statement():
    """PostgreSQL: a WITH may hold an INSERT or UPDATE (SQLite's holds SELECTs only)."""
    return connection.vendor == "postgresql"


def insert_returning_pk(instance, *, event):
    """INSERT `instance` (a new row), and `event` for it, in one statement (PostgreSQL).

    The INSERT is the one Model.save would send. The ORM compiles it once
    for each model, connection and kind of event text; later calls send that
    SQL with their own values, prepared as the ORM prepares them (pre_save,
    then get_db_prep_save). A value that is an expression is compiled by the
    ORM each time. The new primary key is set on `instance`, as save() sets
    it. (No model signals: nothing listens to an import's save.)
    """
    model = type(instance)
    meta = model._meta
    connection = default_connection()
    fields = [field for field in meta.local_concrete_fields if field is not meta.auto_field]
    values = [field.pre_save(instance, add=True) for field in fields]
    prepared = None  # what the ORM would send, unless an expression needs compiling
    if not any(hasattr(value, "resolve_expression") for value in values):
        prepared = [
            field.get_db_prep_save(value, connection)
            for field, value in zip(fields, values, strict=True)
        ]
    insert_params = event_params(event, model, "created", connection)
    shape = (model, connection.alias, event_shape(event))
    sql, params = _INSERT_SQL.get(shape), prepared
    if sql is None or prepared is None:
        insert = event_insert(event, model, "created", connection)
        query = InsertQuery(model)
        query.insert_values(fields, [instance])
        compiler = query.get_compiler(connection=connection)
        compiler.returning_fields = [meta.pk, meta.get_field("team")]
        ((sql, params),) = compiler.as_sql()
        sql = f"WITH created AS ({sql}), event AS ({insert}) SELECT * FROM created"
        if prepared is not None and same_params(prepared, params):
            _INSERT_SQL[shape] = sql  # "%s" for each value: the same SQL for any values
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, *insert_params])
        instance.pk = cursor.fetchone()[0]
    instance._state.adding = False
    instance._state.db = connection.alias


_INSERT_SQL = {}


def event_shape(event):
    """What of an event changes its INSERT's SQL: its text's template, if a RowText."""
    return event.detail.template if isinstance(event.detail, RowText) else None


def same_params(ours, orms):
    """Whether two statements' parameters send the same values.

    A JSON value is an adapter (psycopg's Jsonb) that does not compare by
    value: compared by the object it holds.
    """
    return len(ours) == len(orms) and all(
        type(mine) is type(theirs) and getattr(mine, "obj", mine) == getattr(theirs, "obj", theirs)
        for mine, theirs in zip(ours, orms, strict=True)
    )


# An event's fields that its INSERT ... SELECT takes from the import's row.
EVENT_FIELDS_OF_THE_ROW = ("image_import", "team")


def event_insert(event, model, source, connection):
    """The SQL of INSERT ... SELECT of `event` for each row of `source` (rows of `model`).

    The event's import and team are the row's; every other column is the
    event's own value, a parameter (event_params gives them, prepared as the
    ORM would save them).
    """
    quote = connection.ops.quote_name
    image_import, team = EVENT_FIELDS_OF_THE_ROW
    from_row = {
        image_import: f"{source}.{quote(model._meta.pk.column)}",
        team: f"{source}.{quote(model._meta.get_field('team').column)}",
    }
    columns, values = [], []
    for field, value in event_columns(event):
        columns.append(quote(field.column))
        if field.name in from_row:
            values.append(from_row[field.name])
        elif isinstance(value, RowText):
            values.append(value.as_sql(model, source, connection)[0])
        else:
            values.append("%s")
    table = quote(event._meta.db_table)
    sql = f"INSERT INTO {table} ({', '.join(columns)}) SELECT {', '.join(values)} FROM {source}"
    return sql


def event_params(event, model, source, connection):
    """event_insert's parameters, in the order of its placeholders."""
    params = []
    for field, value in event_columns(event):
        if field.name in EVENT_FIELDS_OF_THE_ROW:
            continue  # in the SQL, from the row
        if isinstance(value, RowText):
            params += value.as_sql(model, source, connection)[1]
        else:
            params.append(field.get_db_prep_save(value, connection))
    return params


def event_columns(event):
    """(field, value) of each column an event's INSERT writes, in the table's order."""
    for field in event._meta.concrete_fields:
        if not field.primary_key:
            yield field, getattr(event, field.attname)


class RowText:
    """An event's text with {field} slots, filled from the row its transition leaves.

    For what only the database knows until the UPDATE has run: the claim's
    attempt number, which the UPDATE itself counts. One template, filled in
    Python (render) or, where the UPDATE writes its own event, in SQL
    (as_sql). Slots are bare field names of columns never NULL.
    """

    def __init__(self, template):
        self.template = template
        self.parts = []
        for literal, field, spec, conversion in string.Formatter().parse(template):
            if spec or conversion:
                raise ValueError(f"RowText takes bare field names, not {{{field}:{spec}}}")
            self.parts.append((literal, field))

    def render(self, instance):
        return "".join(
            literal + ("" if field is None else str(getattr(instance, field)))
            for literal, field in self.parts
        )

    def as_sql(self, model, source, connection):
        quote = connection.ops.quote_name
        pieces, params = [], []
        for literal, field in self.parts:
            if literal:
                pieces.append("CAST(%s AS text)")
                params.append(literal)
            if field is not None:
                column = quote(model._meta.get_field(field).column)
                pieces.append(f"CAST({source}.{column} AS text)")
        return f"concat({', '.join(pieces)})", params

    def __repr__(self):
        return f"RowText({self.template!r})"


class RowReader:
    """A row of some of a model's columns, as the instance the ORM would load from it.

    Each value goes through the converters the ORM itself applies (the
    backend's, then the field's, as SQLCompiler.get_converters), then
    Model.from_db. For the hot statements whose SQL is the portal's own
    (update_returning, TokenLookup): RawQuerySet, which did this before,
    looked every column up in a list recomputed for each field, a quarter of
    the worker's CPU per submit task.
    """

    _cache = {}

    @classmethod
    def of(cls, model, fields, connection, alias=None):
        key = (model, fields, connection.alias, alias)
        if key not in cls._cache:
            cls._cache[key] = cls(model, fields, connection, alias)
        return cls._cache[key]

    def __init__(self, model, fields, connection, alias=None):
        self.model = model
        self.width = len(fields)
        self.attnames = [field.attname for field in fields]
        self.columns = []
        for field in fields:
            col = field.get_col(alias or model._meta.db_table)
            converters = connection.ops.get_db_converters(col) + col.get_db_converters(connection)
            self.columns.append((col, converters))

    def instance(self, values, connection):
        """The instance of `values`, read from `connection` (this thread's)."""
        return self.model.from_db(
            connection.alias,
            self.attnames,
            [
                self.read(value, col, converters, connection)
                for value, (col, converters) in zip(values, self.columns, strict=True)
            ],
        )

    @staticmethod
    def read(value, col, converters, connection):
        for converter in converters:
            value = converter(value, col, connection)
        return value


def per_row(model, field_name, values):
    """CASE pk WHEN ... THEN value ... ELSE the column END: one column, row by row.

    As QuerySet.bulk_update builds it (cast where the database needs it), for
    an UPDATE that bulk_update cannot make: conditional, and RETURNING.
    """
    field = model._meta.get_field(field_name)
    case = Case(
        *(When(pk=pk, then=Value(value, output_field=field)) for pk, value in values.items()),
        default=F(field_name),
        output_field=field,
    )
    if connection.features.requires_casted_case_in_updates:
        return Cast(case, output_field=field)
    return case
