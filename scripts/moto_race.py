"""Checks that the moto server applies DynamoDB requests atomically (see moto_server.py).

Two threads commit transactions that are always cancelled (a condition that never holds) while
two others each write new items in transactions of one. DynamoDB keeps every acknowledged write
and never shows an item without the attributes its write set. Exits 1, saying what went wrong,
if the server lost a write or left an item with its key alone.

Usage: python moto_race.py ENDPOINT [WRITES_PER_WRITER]
"""

import sys
import threading
import uuid

import boto3


def main():
    endpoint = sys.argv[1]
    writes = int(sys.argv[2]) if len(sys.argv) > 2 else 300
    client = boto3.client(
        "dynamodb",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    table = "race-" + uuid.uuid4().hex[:8]
    client.create_table(
        TableName=table,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    client.put_item(TableName=table, Item={"pk": {"S": "fixed"}, "k": {"S": "fixed"}})
    done = threading.Event()

    def cancelled_transactions():
        update = {
            "TableName": table,
            "Key": {"pk": {"S": "fixed"}},
            "UpdateExpression": "SET k = :k",
            "ConditionExpression": "attribute_not_exists(pk)",
            "ExpressionAttributeValues": {":k": {"S": "never"}},
        }
        while not done.is_set():
            try:
                client.transact_write_items(TransactItems=[{"Update": update}])
            except client.exceptions.TransactionCanceledException:
                pass

    def writer(n):
        for i in range(writes):
            key = f"w{n}-{i}"
            update = {
                "TableName": table,
                "Key": {"pk": {"S": key}},
                "UpdateExpression": "SET k = :k",
                "ExpressionAttributeValues": {":k": {"S": key}},
            }
            client.transact_write_items(TransactItems=[{"Update": update}])

    cancellers = [threading.Thread(target=cancelled_transactions) for _ in range(2)]
    writers = [threading.Thread(target=writer, args=(n,)) for n in range(2)]
    for thread in cancellers + writers:
        thread.start()
    for thread in writers:
        thread.join()
    done.set()
    for thread in cancellers:
        thread.join()

    items, start = [], {}
    while True:
        page = client.scan(TableName=table, ConsistentRead=True, **start)
        items += page["Items"]
        if "LastEvaluatedKey" not in page:
            break
        start = {"ExclusiveStartKey": page["LastEvaluatedKey"]}
    client.delete_table(TableName=table)
    expected = 2 * writes + 1
    bare = sum(1 for item in items if "k" not in item)
    if len(items) != expected or bare:
        print(f"moto lost writes or showed half-made items: {len(items)} items of {expected}, {bare} without attributes")
        sys.exit(1)
    print(f"moto kept all {expected} items whole")


if __name__ == "__main__":
    main()
